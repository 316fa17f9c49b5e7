package dev.mm4j.serve;

import dev.mm4j.search.ImageIndex;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import java.io.IOException;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * {@code GET /v1/images/{sha256}[?size=N]} (and HEAD): the images of the served index, or their thumbnails, by
 * content hash; nothing else on disk.
 */
final class ImageRoutes implements Resource {
    private final ServePolicy policy;
    private final SearchRoutes searches;

    ImageRoutes(ServePolicy policy, SearchRoutes searches) {
        this.policy = policy;
        this.searches = searches;
    }

    @Override
    public List<Route> routes() {
        return List.of(new Route(HandlerType.GET, "/v1/images/{sha256}", this::picture),
                new Route(HandlerType.HEAD, "/v1/images/{sha256}", this::picture)); // the headers GET would send
    }

    private void picture(Context ctx) throws IOException {
        try {
            policy.checkServing(searches.indexed(), "--index DIR");
            String sizeText = ctx.queryParam("size");
            int size = 0;
            if (sizeText != null) {
                try {
                    size = Integer.parseInt(sizeText.trim());
                } catch (NumberFormatException e) {
                    size = -1;
                }
                if (size < ImageSearch.MIN_THUMBNAIL || size > ImageSearch.MAX_THUMBNAIL) {
                    throw new ServePolicy.HttpError(400, "size: must be an integer from " + ImageSearch.MIN_THUMBNAIL
                            + " to " + ImageSearch.MAX_THUMBNAIL + ", got '" + sizeText + "'");
                }
            }
            ImageSearch.Picture p = searches.search().picture(ctx.pathParam("sha256"), size, policy.settings.maxBodyBytes());
            // content-addressed: the same URL always means the same bytes
            ctx.header("Cache-Control", "public, max-age=31536000, immutable");
            ctx.header("X-Content-Type-Options", "nosniff");
            ctx.status(200).contentType(p.contentType());
            if (ctx.method() == HandlerType.HEAD) {
                ctx.header("Content-Length", Integer.toString(p.bytes().length));
            } else {
                ctx.result(p.bytes());
            }
        } catch (ServePolicy.HttpError e) {
            ServePolicy.error(ctx, e.status, e.getMessage(), e.retryAfter);
        } catch (NoSuchElementException e) {
            ServePolicy.error(ctx, 404, e.getMessage(), null);
        } catch (ImageSearch.TooLargeException e) {
            ServePolicy.error(ctx, 413, e.getMessage(), null);
        } catch (ImageIndex.UnavailableException e) {
            policy.indexUnavailable(ctx, e);
        }
    }
}
