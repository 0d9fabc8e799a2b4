package lakehouse.connect;

import java.lang.reflect.Method;

import org.apache.spark.sql.catalyst.CurrentUserContext;
import org.sparkproject.connect.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import org.sparkproject.connect.grpc.Metadata;
import org.sparkproject.connect.grpc.ServerCall;
import org.sparkproject.connect.grpc.ServerCallHandler;
import org.sparkproject.connect.grpc.ServerInterceptor;

/**
 * Makes current_user() answer the user a Spark Connect client names (its user_id), as Spark's
 * Thrift server does for its sessions. Without it, every client of one server is the server's
 * own user, and a view that masks on current_user() cannot be shown to a second person without
 * a second Spark process.
 *
 * The name is asserted by the client, not authenticated: it is for a single-user, local server
 * that already requires its token. Unity Catalog authenticates the user on Databricks.
 *
 * Registered with spark.connect.grpc.interceptor.classes. Spark sets CURRENT_USER, an
 * inheritable thread-local, while it handles a request; the threads that run a query are
 * started from there and inherit it. Pooled gRPC threads get their previous value back.
 */
public final class ClientUserInterceptor implements ServerInterceptor {

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    return new SimpleForwardingServerCallListener<Q>(next.startCall(call, headers)) {
      private String user;

      @Override
      public void onMessage(Q message) {
        user = userOf(message);
        as(user, () -> super.onMessage(message));
      }

      @Override
      public void onHalfClose() {
        as(user, super::onHalfClose);
      }

      @Override
      public void onReady() {
        as(user, super::onReady);
      }
    };
  }

  private static void as(String user, Runnable step) {
    if (user == null) {
      step.run();
      return;
    }
    InheritableThreadLocal<String> current = CurrentUserContext.CURRENT_USER();
    String previous = current.get();
    current.set(user);
    try {
      step.run();
    } finally {
      current.set(previous);
    }
  }

  /** The request's user_context.user_id, or null: every Spark Connect request carries one. */
  private static String userOf(Object message) {
    try {
      Method context = message.getClass().getMethod("getUserContext");
      Object userContext = context.invoke(message);
      String id = (String) userContext.getClass().getMethod("getUserId").invoke(userContext);
      return id == null || id.isEmpty() ? null : id;
    } catch (ReflectiveOperationException | ClassCastException notARequestWithAUser) {
      return null;
    }
  }
}
