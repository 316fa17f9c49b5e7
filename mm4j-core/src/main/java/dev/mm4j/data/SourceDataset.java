package dev.mm4j.data;

import java.io.IOException;
import java.util.Iterator;
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

    private final class Pass extends CheckedPass {
        private final Stream<VqaSample> stream;
        private final Iterator<VqaSample> it;
        private long index = -1;

        Pass(Stream<VqaSample> stream) {
            super(LOG, "unusable record(s)");
            this.stream = stream;
            this.it = stream.iterator();
        }

        @Override
        protected VqaSample readNext() {
            while (it.hasNext()) {
                VqaSample s = it.next();
                index++;
                String problem = problem(s);
                if (problem != null) {
                    skip(name + " record " + index + (s == null || s.origin() == null ? "" : " (" + s.origin() + ")"), problem);
                    continue;
                }
                return s.origin() != null ? s : new VqaSample(s.questionId(), s.question(), s.imageId(), s.answers(),
                        s.image(), s.extras(), name + " record " + index);
            }
            return null;
        }

        @Override
        protected void closeSource() {
            stream.close();
        }

        @Override
        protected String describe() {
            return name;
        }
    }
}
