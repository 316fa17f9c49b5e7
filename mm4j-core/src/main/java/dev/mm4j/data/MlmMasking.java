package dev.mm4j.data;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.Random;

/**
 * BERT masking for masked language modelling (MLM on text, MMM on image-text pairs), as Hugging Face's
 * {@code DataCollatorForLanguageModeling} does it for TorchMultimodal's FLAVA datamodules: every position that is
 * not a special token ({@code [PAD]}, {@code [UNK]}, {@code [CLS]}, {@code [SEP]}, {@code [MASK]}: the
 * tokenizer's {@code all_special_ids}) is chosen with probability {@code mlm_probability} (0.15); of the chosen,
 * 80% become {@code [MASK]}, 10% a random token id in {@code [0, vocab size)} and 10% keep their token. The
 * labels hold the original id where chosen and {@link #IGNORE_INDEX} (-1, TorchMultimodal's {@code ignore_index},
 * which its datamodules put in place of Hugging Face's -100) everywhere else.
 *
 * <p>Which tokens are never masked depends on the reference's path ({@link Protected}): its text data
 * ({@code MLMDataModule}) passes the tokenizer's {@code special_tokens_mask}, which marks only the added
 * [CLS] / [SEP] and the [PAD]s, so an [UNK] inside a text can be masked there; its image-text data
 * ({@code DataCollatorForWholeWordMask}) protects all special ids and the padding.
 *
 * <p>{@link #drawWholeWord} is the whole-word variant the reference's image-text data uses
 * ({@code DataCollatorForWholeWordMask}, transformers 4.30): word pieces are grouped into words ({@code ##}
 * continues a word; [CLS] and [SEP] are left out), the words are shuffled and taken while they fit in
 * {@code round(length * mlm_probability)} positions (the padded length: [PAD] positions are candidates too and
 * are dropped afterwards, as in the reference), then the chosen positions get the same 80/10/10 treatment.
 *
 * <p>The draws come from the caller's {@link Random}; a {@link Plan} can also be given explicitly (tests).
 */
public final class MlmMasking {
    /** {@code MLMDataModule} / {@code VLDataModule}'s {@code mlm_probability}. */
    public static final double DEFAULT_MLM_PROBABILITY = 0.15;
    /** The share of chosen positions replaced by {@code [MASK]}. */
    public static final double MASK_TOKEN_SHARE = 0.8;
    /** Of the chosen positions not replaced by [MASK], the share replaced by a random token (the rest are kept). */
    public static final double RANDOM_OF_REST = 0.5;
    /** The label of a position that is not predicted. */
    public static final long IGNORE_INDEX = -1;

    /** The ids masking needs: the vocabulary size and the special tokens. */
    public record Vocab(int size, long pad, long unk, long cls, long sep, long mask) {
        /** bert-base-uncased (also bert-large-uncased-whole-word-masking's vocabulary, which the VL data uses). */
        public static final Vocab BERT_UNCASED = new Vocab(30522, 0, 100, 101, 102, 103);

        public Vocab {
            if (size < 1) {
                throw new IllegalArgumentException("vocab size must be >= 1, got " + size);
            }
        }

        /** Whether {@code id} is a special token (never masked). */
        public boolean isSpecial(long id) {
            return id == pad || id == unk || id == cls || id == sep || id == mask;
        }
    }

    /** Which tokens are never chosen. */
    public enum Protected {
        /** {@code all_special_ids}: [PAD], [UNK], [CLS], [SEP], [MASK] (the image-text data's collator). */
        ALL_SPECIAL_IDS,
        /** The tokenizer's {@code special_tokens_mask}: [CLS], [SEP] and [PAD] (the text data's collator). */
        CLS_SEP_PAD
    }

    /** What happens at one position. */
    public enum Action {
        /** Not chosen: input unchanged, label {@link #IGNORE_INDEX}. */
        NONE,
        /** Chosen, replaced by [MASK]. */
        MASK_TOKEN,
        /** Chosen, replaced by a random token id. */
        RANDOM_TOKEN,
        /** Chosen, input unchanged (but predicted). */
        KEEP
    }

    /**
     * The decisions for one sequence: an action per position and, for {@link Action#RANDOM_TOKEN}, the
     * replacement id (other entries ignored).
     */
    public record Plan(Action[] actions, long[] randomIds) {
        public Plan {
            Objects.requireNonNull(actions, "actions");
            if (randomIds == null) {
                randomIds = new long[actions.length];
            }
            if (randomIds.length != actions.length) {
                throw new IllegalArgumentException("randomIds has " + randomIds.length + " entries for "
                        + actions.length + " actions");
            }
        }
    }

    /** A masked sequence: the model's {@code text_masked} and {@code mlm_labels}. */
    public record Masked(long[] textMasked, long[] mlmLabels) {}

    private final double probability;
    private final Vocab vocab;
    private final Protected protection;

    /** 0.15, bert-base-uncased, all special ids protected. */
    public MlmMasking() {
        this(DEFAULT_MLM_PROBABILITY, Vocab.BERT_UNCASED);
    }

    public MlmMasking(double mlmProbability, Vocab vocab) {
        this(mlmProbability, vocab, Protected.ALL_SPECIAL_IDS);
    }

    public MlmMasking(double mlmProbability, Vocab vocab, Protected protection) {
        if (!(mlmProbability >= 0 && mlmProbability <= 1)) {
            throw new IllegalArgumentException("mlm_probability must be in [0, 1], got " + mlmProbability);
        }
        this.probability = mlmProbability;
        this.vocab = Objects.requireNonNull(vocab, "vocab");
        this.protection = Objects.requireNonNull(protection, "protection");
    }

    public double mlmProbability() {
        return probability;
    }

    public Vocab vocab() {
        return vocab;
    }

    public Protected protection() {
        return protection;
    }

    /** The same masking with another protection. */
    public MlmMasking withProtection(Protected p) {
        return new MlmMasking(probability, vocab, p);
    }

    /** Whether {@code id} is never chosen. */
    public boolean isProtected(long id) {
        return protection == Protected.ALL_SPECIAL_IDS ? vocab.isSpecial(id)
                : id == vocab.cls() || id == vocab.sep() || id == vocab.pad();
    }

    /** Draws a plan for {@code ids}: special tokens get {@link Action#NONE}, the rest as the class comment says. */
    public Plan draw(long[] ids, Random rnd) {
        Action[] actions = new Action[ids.length];
        long[] random = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            if (isProtected(ids[i]) || rnd.nextDouble() >= probability) {
                actions[i] = Action.NONE;
            } else if (rnd.nextDouble() < MASK_TOKEN_SHARE) {
                actions[i] = Action.MASK_TOKEN;
            } else if (rnd.nextDouble() < RANDOM_OF_REST) {
                actions[i] = Action.RANDOM_TOKEN;
                random[i] = rnd.nextInt(vocab.size());
            } else {
                actions[i] = Action.KEEP;
            }
        }
        return new Plan(actions, random);
    }

    /** {@code _whole_word_mask}'s cap on predictions. */
    public static final int WHOLE_WORD_MAX_PREDICTIONS = 512;

    /**
     * A whole-word plan: {@code continuation[i]} says whether position {@code i} continues the word before it
     * (a {@code ##} word piece).
     */
    public Plan drawWholeWord(long[] ids, boolean[] continuation, Random rnd) {
        if (continuation.length != ids.length) {
            throw new IllegalArgumentException(continuation.length + " continuation flags for " + ids.length + " ids");
        }
        List<int[]> words = new ArrayList<>();
        List<Integer> current = null;
        List<List<Integer>> groups = new ArrayList<>();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == vocab.cls() || ids[i] == vocab.sep()) {
                continue;
            }
            if (!groups.isEmpty() && continuation[i]) {
                current.add(i);
            } else {
                current = new ArrayList<>();
                current.add(i);
                groups.add(current);
            }
        }
        for (List<Integer> g : groups) {
            words.add(g.stream().mapToInt(Integer::intValue).toArray());
        }
        Collections.shuffle(words, rnd);
        int numToPredict = Math.min(WHOLE_WORD_MAX_PREDICTIONS,
                Math.max(1, (int) Math.rint(ids.length * probability)));
        boolean[] covered = new boolean[ids.length];
        int predicted = 0;
        for (int[] word : words) {
            if (predicted >= numToPredict) {
                break;
            }
            if (predicted + word.length > numToPredict) {
                continue;
            }
            for (int i : word) {
                covered[i] = true;
            }
            predicted += word.length;
        }
        Action[] actions = new Action[ids.length];
        long[] random = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            actions[i] = Action.NONE;
            if (!covered[i] || isProtected(ids[i])) {
                continue;
            }
            if (rnd.nextDouble() < MASK_TOKEN_SHARE) {
                actions[i] = Action.MASK_TOKEN;
            } else if (rnd.nextDouble() < RANDOM_OF_REST) {
                actions[i] = Action.RANDOM_TOKEN;
                random[i] = rnd.nextInt(vocab.size());
            } else {
                actions[i] = Action.KEEP;
            }
        }
        return new Plan(actions, random);
    }

    /** {@link #draw} then {@link #apply(long[], Plan)}. */
    public Masked apply(long[] ids, Random rnd) {
        return apply(ids, draw(ids, rnd));
    }

    /**
     * Applies an explicit plan; a plan that would mask a special token is refused (the reference never does).
     */
    public Masked apply(long[] ids, Plan plan) {
        if (plan.actions().length != ids.length) {
            throw new IllegalArgumentException("plan has " + plan.actions().length + " positions for " + ids.length
                    + " token ids");
        }
        long[] masked = ids.clone();
        long[] labels = new long[ids.length];
        Arrays.fill(labels, IGNORE_INDEX);
        for (int i = 0; i < ids.length; i++) {
            Action a = plan.actions()[i];
            if (a == Action.NONE) {
                continue;
            }
            if (isProtected(ids[i])) {
                throw new IllegalArgumentException("position " + i + " holds the special token " + ids[i]
                        + ", which is never masked");
            }
            labels[i] = ids[i];
            if (a == Action.MASK_TOKEN) {
                masked[i] = vocab.mask();
            } else if (a == Action.RANDOM_TOKEN) {
                long r = plan.randomIds()[i];
                if (r < 0 || r >= vocab.size()) {
                    throw new IllegalArgumentException("random token id " + r + " at position " + i
                            + " is outside the vocabulary [0, " + vocab.size() + ")");
                }
                masked[i] = r;
            }
        }
        return new Masked(masked, labels);
    }
}
