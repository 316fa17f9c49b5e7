package dev.mm4j.checkpoint;

import java.io.IOException;

/** A checkpoint file that cannot be read safely: malformed, truncated, hostile or unsupported. */
public class CheckpointException extends IOException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
