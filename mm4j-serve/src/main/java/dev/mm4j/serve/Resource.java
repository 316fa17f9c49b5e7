package dev.mm4j.serve;

import io.javalin.http.Handler;
import io.javalin.http.HandlerType;
import java.io.IOException;
import java.util.List;
import java.util.Map;

/**
 * One resource of a {@link ModelServer}'s API (answers, search, images): its routes, its part of {@code /readyz}, and
 * what it stops and closes. A new endpoint is one more class like this, listed in {@link ModelServer}'s constructor;
 * errors, body parsing, availability and metrics are {@link ServePolicy}'s.
 */
interface Resource {
    /** A route: the one method its path takes (the server answers the others with 405; HEAD goes with GET). */
    record Route(HandlerType method, String path, Handler handler) {}

    List<Route> routes();

    /** Adds what {@code /readyz} says of this resource when it is served. */
    default void describe(Map<String, Object> ready) throws IOException {}

    /** Stops taking work (its queues), at a graceful stop once the requests in flight are done. */
    default void stop() {}

    /** Closes the models it was given; called only when the server loaded (owns) them. */
    default void release() {}
}
