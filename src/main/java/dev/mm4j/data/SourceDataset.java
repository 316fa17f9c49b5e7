package dev.mm4j.data;

import java.io.IOException;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.OptionalLong;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** A {@link VqaSource} as a {@link VqaDataset}: the source's records, checked, the unusable ones skipped and counted. */
final class SourceDataset extends AbstractVqaDataset {
    private static final Logger LOG = LoggerFactory.getLogger(SourceDataset.class);

    private final String name;
    private final VqaSource source;

    SourceDataset(String name, VqaSource source) {
        this.name = name;
        this.source = source;
    }

    @Override
    public OptionalLong sizeIfCheap() {
        return OptionalLong.empty();
    }

    @Override
    public String describe() {
        return name;
    }

    @Override
    protected SampleIterator openPass() {
        try {
            return new Pass(source.open());
        } catch (IOException e) {
            throw VqaDataset.unchecked(new IOException(name + ": " + e.getMessage(), e));
        }
    }

    /** Why a record cannot be used (naming the field), or null. */
    static String problem(VqaSample s) {
        if (s == null) {
            return "the record is null";
        }
        if (s.question() == null) {
            return "field 'question' is null";
        }
        if (s.image() == null) {
            return "field 'image' is null";
        }
        if (s.answers() == null) {
            return "field 'answers' is null (use an empty list when there are none)";
        }
        if (s.answers().stream().anyMatch(java.util.Objects::isNull)) {
            return "field 'answers' holds a null";
        }
        return null;
    }

    private final class Pass implements SampleIterator {
        private final boolean detailed = firstPass();
        private final Stream<VqaSample> stream;
        private final Iterator<VqaSample> it;
        private VqaSample next;
        private long index = -1;
        private long skipped;
        private boolean closed;

        Pass(Stream<VqaSample> stream) {
            this.stream = stream;
            this.it = stream.iterator();
        }

        @Override
        public boolean hasNext() {
            if (next != null) {
                return true;
            }
            if (closed) {
                return false;
            }
            while (it.hasNext()) {
                VqaSample s = it.next();
                index++;
                String problem = problem(s);
                if (problem != null) {
                    skipped++;
                    if (detailed) {
                        LOG.warn("{} record {}{}: skipped, {}", name, index,
                                s == null || s.origin() == null ? "" : " (" + s.origin() + ")", problem);
                    }
                    continue;
                }
                next = s.origin() != null ? s : new VqaSample(s.questionId(), s.question(), s.imageId(), s.answers(),
                        s.image(), s.extras(), name + " record " + index);
                return true;
            }
            finished(skipped);
            if (skipped > 0) {
                LOG.warn("{}: skipped {} unusable record(s) of {}", name, skipped, index + 1);
            }
            close();
            return false;
        }

        @Override
        public VqaSample next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            VqaSample s = next;
            next = null;
            return s;
        }

        @Override
        public void close() {
            if (!closed) {
                closed = true;
                stream.close();
                released(this);
            }
        }
    }
}
