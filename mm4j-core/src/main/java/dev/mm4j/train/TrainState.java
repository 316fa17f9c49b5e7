package dev.mm4j.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import java.io.IOException;

/**
 * Where a run stands, saved with each checkpoint so that {@code --resume} continues exactly: the
 * optimizer steps taken, the data position (epoch and next batch), the best validation accuracy.
 * Randomness needs no saved state: dropout is seeded from (seed, step) at every step.
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public final class TrainState {
    public long step;
    public int epoch;
    public int nextBatch;
    public long samplesSeen;
    public long seed;
    public double lastLoss = Double.NaN;
    public Double bestValAccuracy;
    public Long bestStep;

    private static final ObjectMapper MAPPER = new ObjectMapper();

    public String toJson() {
        try {
            return MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static TrainState fromJson(String json) throws IOException {
        return MAPPER.readValue(json, TrainState.class);
    }

    /** Advances the data position past batch {@code index} of {@code epoch}. */
    void consumed(int epoch, int index, int samples) {
        this.epoch = epoch;
        this.nextBatch = index + 1;
        this.samplesSeen += samples;
    }

    /** The torch seed for a step: dropout masks depend only on (seed, step). */
    static long stepSeed(long seed, long step) {
        return seed * 1_000_003L + step;
    }
}
