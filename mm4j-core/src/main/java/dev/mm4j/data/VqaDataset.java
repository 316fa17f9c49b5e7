package dev.mm4j.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.OptionalLong;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/**
 * A VQA split, one {@link VqaSample} at a time: TextVQA's JSON or parquet and manifests from disk
 * ({@link TextVqaDatasets#open}), or the caller's own store ({@link #of(String, VqaSource)}). Every {@link #iterator()}
 * call starts a fresh pass; the iterator holds the open file until it is exhausted or closed. Closing the dataset
 * closes any iterator still open. Read errors during iteration surface as {@link UncheckedIOException} naming the
 * file.
 */
public interface VqaDataset extends Iterable<VqaSample>, AutoCloseable {

    /** An iterator over an open file: close it when stopping early. */
    interface SampleIterator extends Iterator<VqaSample>, AutoCloseable {
        @Override
        void close();
    }

    @Override
    SampleIterator iterator();

    /** The number of samples, when it is known without reading the data (parquet footers); else empty. */
    OptionalLong sizeIfCheap();

    /** The number of samples, reading the whole split if it is not {@link #sizeIfCheap() cheap}. */
    default long size() {
        OptionalLong cheap = sizeIfCheap();
        if (cheap.isPresent()) {
            return cheap.getAsLong();
        }
        long n = 0;
        try (SampleIterator it = iterator()) {
            while (it.hasNext()) {
                it.next();
                n++;
            }
        }
        return n;
    }

    /** Records skipped as malformed by the most recently finished pass (0 before any pass). */
    long skippedCount();

    /** What was opened, for messages (file or folder, split, format). */
    String describe();

    /** A sequential stream over one pass; close the stream to release the file. */
    default Stream<VqaSample> stream() {
        SampleIterator it = iterator();
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(it::close);
    }

    /** Closes every iterator still open. */
    @Override
    void close();

    /**
     * The caller's own data as a dataset: each pass opens {@code source} again; records it cannot use are skipped and
     * counted. Closing the dataset closes the passes still open, not the caller's store.
     *
     * @param name what the data is, for messages (e.g. {@code "orders-db questions"})
     */
    static VqaDataset of(String name, VqaSource source) {
        return new SourceDataset(name, source);
    }

    /** Wraps an IOException for iteration. */
    static UncheckedIOException unchecked(IOException e) {
        return new UncheckedIOException(e.getMessage(), e);
    }
}
