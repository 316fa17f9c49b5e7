package dev.mm4j.data;

import java.io.IOException;
import java.util.stream.Stream;

/**
 * The caller's own VQA data (a database, an object store, an in-memory list), for training and evaluation: the one
 * method to implement. Wrap it with {@link VqaDataset#of(String, VqaSource)} and pass that to
 * {@code Finetuner.Builder.trainingData}:
 *
 * <pre>{@code
 * VqaDataset train = VqaDataset.of("my-store", () -> rows.stream().map(r ->
 *         VqaSample.of(r.id(), r.question(), r.answers(), new VqaSample.BytesImage(r.jpeg(), r.key()))));
 * }</pre>
 *
 * <p>Records the run cannot use (null, no question, no image, null answers) are skipped with a warning naming the
 * record and counted ({@link VqaDataset#skippedCount()}); they never stop a run. An image that is missing or cannot be
 * decoded is skipped likewise when it is read.
 */
@FunctionalInterface
public interface VqaSource {

    /**
     * One pass over the records. Called once per epoch (and once to count them): each call must give the same
     * records in the same order, so that a seeded run, and a resumed one, sees the same data. The stream is closed at
     * the end of the pass, or when the pass is abandoned.
     */
    Stream<VqaSample> open() throws IOException;
}
