// DynamoDB Local bound to loopback only.
//
// The stock main class (com.amazonaws.services.dynamodbv2.local.main.ServerMain) listens on
// every interface and has no bind option. This single-source program (run it with
// `java -cp "<DynamoDBLocal.jar>:<DynamoDBLocal_lib>/*" Launcher.java -inMemory -port P
// -disableTelemetry`) builds the same server from the same command-line arguments, points
// every Jetty connector at 127.0.0.1 before anything is bound, starts it, checks the bound
// address and prints one "DDBLOCAL LISTENING 127.0.0.1:<port>" line for the helper to wait on.
//
// Telemetry: it is only ever sent through Telemetry.getTelemetry(), which stays empty unless
// Telemetry.configureTelemetry(...) is called (ServerMain does; this launcher never does), and
// -disableTelemetry is passed as well.
//
// Set DDBLOCAL_HOST to bind another loopback address (default 127.0.0.1).

import java.lang.reflect.Field;
import java.lang.reflect.Method;

import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.NetworkConnector;
import org.eclipse.jetty.server.Server;

import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class Launcher {
    public static void main(String[] args) throws Exception {
        String host = System.getenv().getOrDefault("DDBLOCAL_HOST", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);

        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);

        Connector[] connectors = server.getConnectors();
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local built a Jetty server with no connector");
        }
        for (Connector connector : connectors) {
            // AbstractNetworkConnector.setHost(String): not on the NetworkConnector interface.
            Method setHost = connector.getClass().getMethod("setHost", String.class);
            setHost.invoke(connector, host);
        }

        // safeStart() = Jetty's Server.start() only (start() adds the telemetry event and
        // swallows bind errors; we want a bind failure to kill the process loudly).
        proxy.safeStart();

        for (Connector connector : server.getConnectors()) {
            NetworkConnector net = (NetworkConnector) connector;
            if (!host.equals(net.getHost()) || net.getLocalPort() <= 0) {
                System.err.println("DDBLOCAL refusing to run: connector bound to "
                        + net.getHost() + ":" + net.getLocalPort());
                server.stop();
                System.exit(2);
            }
            System.out.println("DDBLOCAL LISTENING " + net.getHost() + ":" + net.getLocalPort());
        }
        System.out.flush();
        server.join();
    }
}
