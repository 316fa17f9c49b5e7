package dev.mm4j.inference;

/** A request the model cannot answer as given: the message names the field and what is wrong. */
public final class InvalidInputException extends IllegalArgumentException {
    /** What is wrong, so that a service can pick its status code. */
    public enum Kind { NOT_AN_IMAGE, UNDECODABLE_IMAGE, TOO_MANY_PIXELS, MISSING_QUESTION, MISSING_TEXT, BAD_K }

    private final Kind kind;

    public InvalidInputException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }
}
