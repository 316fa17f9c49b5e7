package dev.mm4j.train;

import java.util.Locale;

/**
 * Learning-rate schedules with linear warmup, using the formulas of Hugging Face transformers
 * ({@code get_cosine_schedule_with_warmup}, {@code get_linear_schedule_with_warmup},
 * {@code get_constant_schedule_with_warmup}, and the {@code min_lr_rate} variant of
 * {@code get_cosine_with_min_lr_schedule_with_warmup}). {@code lr(step) = baseLr * multiplier(step)}.
 *
 * <ul>
 *   <li>warmup ({@code step < warmup}): {@code step / max(1, warmup)}
 *   <li>cosine: {@code progress = (step - warmup) / max(1, total - warmup)};
 *       {@code f = 0.5 * (1 + cos(pi * numCycles * 2 * progress))}; with a min ratio
 *       {@code f = f * (1 - minRatio) + minRatio}; result {@code max(0, f)}
 *   <li>linear: {@code max(0, (total - step) / max(1, total - warmup))}; with a min ratio
 *       {@code f * (1 - minRatio) + minRatio}
 *   <li>constant: 1 after warmup
 * </ul>
 *
 * <p>As in Hugging Face, cosine is not clamped past {@code total} (with {@code numCycles = 0.5} it would
 * rise again); linear stays at 0 (or the min ratio) past {@code total}. Steps are 0-based: the optimizer
 * step with index {@code step} uses {@code lr(step)}, so step 0 has lr 0 when warmup > 0.
 */
public final class LrSchedule {

    /** The decay shape after warmup. */
    public enum Kind {
        COSINE, LINEAR, CONSTANT;

        /** Case-insensitive parse ("cosine", "linear", "constant"). */
        public static Kind parse(String s) {
            return valueOf(s.trim().toUpperCase(Locale.ROOT));
        }
    }

    private final Kind kind;
    private final double baseLr;
    private final long warmupSteps;
    private final long totalSteps;
    private final double numCycles;
    private final double minRatio;

    /**
     * @param kind the decay shape
     * @param baseLr the peak learning rate
     * @param warmupSteps linear warmup steps (0 for none)
     * @param totalSteps total optimizer steps (ignored by CONSTANT)
     * @param numCycles cosine cycles (0.5 = a half cosine from 1 down to 0)
     * @param minRatio the floor as a fraction of baseLr the decay reaches at {@code totalSteps} (0 = decay to 0)
     */
    public LrSchedule(Kind kind, double baseLr, long warmupSteps, long totalSteps, double numCycles, double minRatio) {
        if (kind == null) throw new IllegalArgumentException("kind is required");
        if (!(baseLr >= 0) || Double.isInfinite(baseLr)) throw new IllegalArgumentException("baseLr must be >= 0: " + baseLr);
        if (warmupSteps < 0) throw new IllegalArgumentException("warmupSteps must be >= 0: " + warmupSteps);
        if (kind != Kind.CONSTANT && totalSteps <= 0) {
            throw new IllegalArgumentException("totalSteps must be > 0 for " + kind + ": " + totalSteps);
        }
        if (kind != Kind.CONSTANT && warmupSteps > totalSteps) {
            throw new IllegalArgumentException("warmupSteps (" + warmupSteps + ") > totalSteps (" + totalSteps + ")");
        }
        if (!(minRatio >= 0 && minRatio <= 1)) throw new IllegalArgumentException("minRatio must be in [0,1]: " + minRatio);
        this.kind = kind;
        this.baseLr = baseLr;
        this.warmupSteps = warmupSteps;
        this.totalSteps = totalSteps;
        this.numCycles = numCycles;
        this.minRatio = minRatio;
    }

    /** HF {@code get_cosine_schedule_with_warmup} (num_cycles 0.5). */
    public static LrSchedule cosine(double baseLr, long warmupSteps, long totalSteps) {
        return new LrSchedule(Kind.COSINE, baseLr, warmupSteps, totalSteps, 0.5, 0.0);
    }

    /** Cosine decay to {@code minRatio * baseLr} (HF {@code min_lr_rate}). */
    public static LrSchedule cosine(double baseLr, long warmupSteps, long totalSteps, double minRatio) {
        return new LrSchedule(Kind.COSINE, baseLr, warmupSteps, totalSteps, 0.5, minRatio);
    }

    /** HF {@code get_linear_schedule_with_warmup}. */
    public static LrSchedule linear(double baseLr, long warmupSteps, long totalSteps) {
        return new LrSchedule(Kind.LINEAR, baseLr, warmupSteps, totalSteps, 0.5, 0.0);
    }

    /** Linear decay to {@code minRatio * baseLr}. */
    public static LrSchedule linear(double baseLr, long warmupSteps, long totalSteps, double minRatio) {
        return new LrSchedule(Kind.LINEAR, baseLr, warmupSteps, totalSteps, 0.5, minRatio);
    }

    /** HF {@code get_constant_schedule_with_warmup} ({@code warmupSteps = 0}: a constant lr). */
    public static LrSchedule constant(double baseLr, long warmupSteps) {
        return new LrSchedule(Kind.CONSTANT, baseLr, warmupSteps, 0, 0.5, 0.0);
    }

    /** The multiplier of baseLr at {@code step} (0-based). */
    public double multiplier(long step) {
        if (step < 0) throw new IllegalArgumentException("step must be >= 0: " + step);
        if (step < warmupSteps) {
            return (double) step / (double) Math.max(1, warmupSteps);
        }
        switch (kind) {
            case CONSTANT:
                return 1.0;
            case LINEAR: {
                double f = Math.max(0.0, (double) (totalSteps - step) / (double) Math.max(1, totalSteps - warmupSteps));
                return minRatio == 0 ? f : f * (1 - minRatio) + minRatio;
            }
            case COSINE: {
                double progress = (double) (step - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps);
                double f = 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress));
                if (minRatio != 0) f = f * (1 - minRatio) + minRatio;
                return Math.max(0.0, f);
            }
            default:
                throw new AssertionError(kind);
        }
    }

    /** The learning rate at {@code step} (0-based). */
    public double lr(long step) {
        return baseLr * multiplier(step);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s(baseLr=%g, warmup=%d, total=%d, minRatio=%g)",
                kind.name().toLowerCase(Locale.ROOT), baseLr, warmupSteps, totalSteps, minRatio);
    }
}
