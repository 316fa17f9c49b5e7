package dev.mm4j.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import dev.mm4j.nn.Parameter;
import dev.mm4j.train.dist.ProcessGroup;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * Data-parallel gradients (PyTorch DDP's averaging): each rank's gradients are summed over the {@link ProcessGroup}
 * in place and divided by the world size, so every rank then takes the same optimizer step. A layer passed during the
 * backward pass is synchronised before the step updates it; the rest after the backward pass, in buckets of about
 * {@code bucketBytes}: every collective of a bucket is started before the first is awaited (Gloo's threads work on
 * them side by side, the next bucket is launched while one is awaited). Each rank must call with the same parameters
 * in the same order (the same model); a parameter without a gradient (unused by the loss) is left out on every rank.
 */
public final class DataParallelSync implements GradientSync {
    /** DDP's default bucket size ({@code bucket_cap_mb=25}). */
    public static final long DEFAULT_BUCKET_BYTES = 25L << 20;

    private final ProcessGroup group;
    private final long bucketBytes;

    public DataParallelSync(ProcessGroup group) {
        this(group, DEFAULT_BUCKET_BYTES);
    }

    public DataParallelSync(ProcessGroup group, long bucketBytes) {
        if (bucketBytes < 1) {
            throw new IllegalArgumentException("bucket size must be positive, not " + bucketBytes);
        }
        this.group = group;
        this.bucketBytes = bucketBytes;
    }

    public ProcessGroup group() {
        return group;
    }

    /** The mean over the ranks (one float64 all-reduce): every rank sees the same loss and takes the same decision. */
    @Override
    public double meanOverRanks(double value) {
        if (group.worldSize() == 1) {
            return value;
        }
        boolean gradMode = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try (NDManager m = NDManager.newBaseManager();
                NDArray v = m.create(new double[] {value})) { // read back before either is closed
            group.allReduceSum(List.of(v));
            return v.getDouble(0) / group.worldSize();
        } finally {
            JniUtils.setGradMode(gradMode);
        }
    }

    @Override
    public void layerReady(Collection<Parameter> params) {
        average(params);
    }

    @Override
    public void restReady(Collection<Parameter> params) {
        average(params);
    }

    /**
     * Starts averaging a layer's gradients (every collective of it started; Gloo's threads run them while the
     * backward pass goes on) and returns the handle that awaits them and divides by the world size.
     */
    @Override
    public Started startLayer(Collection<Parameter> params) {
        if (group.worldSize() == 1) {
            return Started.DONE;
        }
        List<NDArray> grads = gradients(params);
        List<List<NDArray>> buckets = buckets(grads);
        List<ProcessGroup.Pending> started = new ArrayList<>();
        boolean gradMode = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        try {
            for (List<NDArray> bucket : buckets) {
                started.add(group.startAllReduceSum(bucket));
            }
        } catch (RuntimeException e) {
            started.forEach(ProcessGroup.Pending::close);
            grads.forEach(NDArray::close);
            throw e;
        } finally {
            JniUtils.setGradMode(gradMode);
        }
        return () -> {
            boolean mode = JniUtils.isGradMode();
            JniUtils.setGradMode(false);
            try {
                for (int i = 0; i < started.size(); i++) {
                    finish(started.get(i), buckets.get(i));
                }
            } finally {
                JniUtils.setGradMode(mode);
                grads.forEach(NDArray::close); // the Java views only
            }
        };
    }

    /** Averages the gradients of {@code params} over the group, bucket by bucket (two buckets in flight). */
    private void average(Collection<Parameter> params) {
        if (group.worldSize() == 1) {
            return;
        }
        List<NDArray> grads = gradients(params);
        try {
            average(grads);
        } finally {
            grads.forEach(NDArray::close); // the Java views only; gradients stay with their parameters
        }
    }

    /**
     * Averages {@code arrays} over the group in place, as the gradients are: in buckets of about the bucket size, every
     * collective of a bucket started before the first is awaited, two buckets in flight (what {@code bench --nproc}
     * times on arrays of the model's gradients' shapes). Every rank passes the same shapes in the same order.
     */
    public void average(List<NDArray> arrays) {
        if (group.worldSize() == 1) {
            return;
        }
        List<List<NDArray>> buckets = buckets(arrays);
        boolean gradMode = JniUtils.isGradMode();
        JniUtils.setGradMode(false); // averaging is not part of any graph
        try {
            ProcessGroup.Pending inFlight = null;
            List<NDArray> inFlightGrads = null;
            for (List<NDArray> bucket : buckets) {
                ProcessGroup.Pending next;
                try {
                    next = group.startAllReduceSum(bucket);
                } catch (RuntimeException e) {
                    if (inFlight != null) {
                        inFlight.close(); // frees it; the first failure is the one reported
                    }
                    throw e;
                }
                if (inFlight != null) {
                    finish(inFlight, inFlightGrads);
                }
                inFlight = next;
                inFlightGrads = bucket;
            }
            if (inFlight != null) {
                finish(inFlight, inFlightGrads);
            }
        } finally {
            JniUtils.setGradMode(gradMode);
        }
    }

    private void finish(ProcessGroup.Pending pending, List<NDArray> grads) {
        pending.await();
        for (NDArray g : grads) {
            // a libtorch-made scalar of the gradient's type (see flava.ModelStep); a power of two divides exactly
            try (NDArray world = g.getManager().full(new Shape(), group.worldSize(), g.getDataType())) {
                g.divi(world);
            }
        }
    }

    /** The parameters' gradients (views of libtorch's own), in the given order. */
    private static List<NDArray> gradients(Collection<Parameter> params) {
        List<NDArray> grads = new ArrayList<>();
        for (Parameter p : params) {
            NDArray g = JniUtils.getGradient((PtNDArray) p.array());
            if (g == null) {
                // not used by this step's loss (p.grad is None): the same on every rank, as the model is the same
                // (DDP's find_unused_parameters case); a parameter used on one rank only would leave the ranks
                // waiting for each other until the timeout
                continue;
            }
            grads.add(g);
        }
        return grads;
    }

    /** {@code arrays} in buckets of about bucketBytes, in the given order. */
    private List<List<NDArray>> buckets(List<NDArray> arrays) {
        List<List<NDArray>> buckets = new ArrayList<>();
        List<NDArray> current = new ArrayList<>();
        long bytes = 0;
        for (NDArray g : arrays) {
            current.add(g);
            bytes += g.getShape().size() * g.getDataType().getNumOfBytes();
            if (bytes >= bucketBytes) {
                buckets.add(current);
                current = new ArrayList<>();
                bytes = 0;
            }
        }
        if (!current.isEmpty()) {
            buckets.add(current);
        }
        return buckets;
    }
}
