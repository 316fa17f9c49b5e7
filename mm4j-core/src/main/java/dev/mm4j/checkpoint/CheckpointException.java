package dev.mm4j.checkpoint;

import java.io.IOException;

/**
 * A checkpoint file that cannot be read safely: malformed, truncated, hostile or unsupported. The message is one
 * line: control characters that a corrupt file put into names (newlines, escape sequences) are shown escaped, and
 * a runaway message is cut.
 */
public class CheckpointException extends IOException {
    static final int MAX_MESSAGE = 2000;

    public CheckpointException(String message) {
        super(oneLine(message));
    }

    public CheckpointException(String message, Throwable cause) {
        super(oneLine(message), cause);
    }

    static String oneLine(String message) {
        if (message == null) {
            return null;
        }
        StringBuilder sb = new StringBuilder(Math.min(message.length(), MAX_MESSAGE) + 16);
        for (int i = 0; i < message.length() && sb.length() < MAX_MESSAGE; i++) {
            char c = message.charAt(i);
            if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
                sb.append(String.format("\\x%02x", (int) c));
            } else {
                sb.append(c);
            }
        }
        if (sb.length() >= MAX_MESSAGE && message.length() > MAX_MESSAGE) {
            sb.append("...");
        }
        return sb.toString();
    }
}
