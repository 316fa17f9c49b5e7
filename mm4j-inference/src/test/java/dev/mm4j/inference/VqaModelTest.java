package dev.mm4j.inference;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import dev.mm4j.data.Padding;
import dev.mm4j.nn.Precision;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

class VqaModelTest {
    @TempDir Path tmp;

    private static final String[] QUESTIONS = {"what does the sign say?", "colour?",
        "what is the word written in the box at the top left of the picture?"};

    /**
     * The Java API runs a bundle in the precision it was trained in (bundle.json), bf16 only where the CPU has it, and
     * a precision asked for wins; bf16's answers are bf16's (within bfloat16's 8 bits of fp32's probabilities).
     */
    @Test
    void loadRunsTheBundlesOwnPrecisionUnlessAskedOtherwise() throws Exception {
        Path dir = TinyBundle.write(tmp.resolve("m"), Padding.DYNAMIC);
        byte[] image = TinyBundle.png(5, 64, 48);
        List<Answer> fp32;
        try (VqaModel m = VqaModel.load(dir)) {
            assertEquals(Precision.FP32, m.precision(), "written from an fp32 model");
            fp32 = m.answer(image, QUESTIONS[0], 9);
        }
        Path info = dir.resolve(dev.mm4j.checkpoint.ModelBundle.INFO);
        String json = Files.readString(info);
        assertTrue(json.contains("\"precision\" : \"fp32\""), json);
        Files.writeString(info, json.replace("\"precision\" : \"fp32\"", "\"precision\" : \"bf16\""));
        Precision bf16Here = Precision.nativeBf16(Device.cpu()) ? Precision.BF16 : Precision.FP32;
        try (VqaModel m = VqaModel.load(dir)) {
            assertEquals(bf16Here, m.precision(), "a bf16 bundle: bf16 where the CPU has it, else fp32");
        }
        try (VqaModel fp = VqaModel.load(dir, Device.cpu(), VqaModel.Options.defaults(), "fp32");
                VqaModel bf = VqaModel.load(dir, Device.cpu(), VqaModel.Options.defaults(), "bf16")) {
            assertEquals(Precision.FP32, fp.precision());
            assertEquals(Precision.BF16, bf.precision());
            assertSame(List.of(fp.answer(image, QUESTIONS[0], 9)), List.of(fp32), "fp32 asked for: the fp32 answers");
            // bf16's answers are bf16's; this bf16 forward pass, before ReadmeJavaTest trains in bf16 in this JVM, also
            // holds TorchOps to keeping its method selectors out of the step's scope (they were released with it)
            List<Answer> b = bf.answer(image, QUESTIONS[0], 9);
            for (int i = 0; i < fp32.size(); i++) {
                Answer a = fp32.get(i);
                double p = b.stream().filter(x -> x.answer().equals(a.answer())).findFirst().orElseThrow().probability();
                assertEquals(a.probability(), p, 0.02, a.answer());
            }
        }
    }

    /**
     * int8 asked for: the Java API (so serve, predict, evaluate) runs the bundle's linear layers in int8, its answers
     * close to fp32's probabilities, and the same answers every time (each weight quantized once, on first use).
     */
    @Test
    void int8AnswersAreCloseToFp32sAndRepeatable() throws Exception {
        Path dir = TinyBundle.write(tmp.resolve("m8"), Padding.DYNAMIC);
        byte[] image = TinyBundle.png(5, 64, 48);
        try (VqaModel fp = VqaModel.load(dir, Device.cpu(), VqaModel.Options.defaults(), "fp32");
                VqaModel q = VqaModel.load(dir, Device.cpu(), VqaModel.Options.defaults(), "int8")) {
            assertEquals(Precision.INT8, q.precision());
            for (String question : QUESTIONS) {
                List<Answer> want = fp.answer(image, question, 9);
                List<Answer> got = q.answer(image, question, 9);
                assertSame(List.of(q.answer(image, question, 9)), List.of(got), "int8, asked twice");
                double worst = 0;
                for (Answer a : want) {
                    double p = got.stream().filter(x -> x.answer().equals(a.answer())).findFirst()
                            .map(Answer::probability).orElse(0.0);
                    worst = Math.max(worst, Math.abs(a.probability() - p));
                }
                System.out.printf("int8 vs fp32 answer probabilities, '%s': max difference %.3g%n", question, worst);
                assertTrue(worst <= 0.05, "int8 probabilities differ from fp32's by " + worst);
            }
        }
    }

    /** An answer given in a batch equals the answer given alone, with and without the image cache. */
    @ParameterizedTest
    @EnumSource(Padding.class)
    void batchedAnswersEqualAnswersAlone(Padding padding) throws Exception {
        Path dir = TinyBundle.write(tmp.resolve("m"), padding);
        List<byte[]> images = new ArrayList<>();
        List<String> questions = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            images.add(TinyBundle.png(i, 64 + 16 * i, 48));
            questions.add(QUESTIONS[i]);
        }
        images.add(images.get(0)); // the same image twice in one batch
        questions.add("which brand?");
        List<List<Answer>> alone = new ArrayList<>();
        try (VqaModel m = VqaModel.load(dir, Device.cpu(), new VqaModel.Options(0, 1_000_000))) {
            for (int i = 0; i < images.size(); i++) {
                alone.add(m.answer(images.get(i), questions.get(i), 9));
            }
            assertSame(m.answerAll(images, questions, 9), alone, "batch without cache");
        }
        try (VqaModel m = VqaModel.load(dir, Device.cpu(), VqaModel.Options.defaults())) {
            assertSame(m.answerAll(images, questions, 9), alone, "batch, images encoded and cached");
            List<VqaModel.Result> again = m.answer(List.of(m.prepare(images.get(1), "what is it?"),
                    m.prepare(images.get(2), questions.get(2))), 9);
            assertTrue(again.get(0).imageCached() && again.get(1).imageCached(), "second questions hit the cache");
            assertEquals(2, again.get(0).batchSize());
            assertSame(List.of(again.get(1).answers()), List.of(alone.get(2)), "cached image encoding");
            assertEquals(3, m.imageCacheEntries());
            assertEquals(3L * (1 + 16) * 64 * 4, m.imageCacheBytes(), "three (1, 17, 64) float32 encodings");
        }
        for (List<Answer> a : alone) {
            assertEquals(9, a.size());
            double sum = a.stream().mapToDouble(Answer::probability).sum();
            assertEquals(1.0, sum, 1e-5, "all 9 classes: probabilities sum to 1");
            for (int i = 1; i < a.size(); i++) {
                assertTrue(a.get(i - 1).probability() >= a.get(i).probability());
            }
        }
    }

    private static void assertSame(List<List<Answer>> got, List<List<Answer>> want, String what) {
        assertEquals(want.size(), got.size());
        for (int i = 0; i < want.size(); i++) {
            for (int j = 0; j < want.get(i).size(); j++) {
                Answer w = want.get(i).get(j);
                Answer g = got.get(i).get(j);
                assertEquals(w.probability(), g.probability(), 1e-5, what + ": question " + i + " answer " + j);
                if (Math.abs(w.probability() - (j + 1 < want.get(i).size() ? want.get(i).get(j + 1).probability() : -1)) > 1e-4) {
                    assertEquals(w.answer(), g.answer(), what + ": question " + i + " answer " + j);
                }
            }
        }
    }

    /**
     * A warm-up (what serve runs before it says ready) leaves the model as it was: nothing in the image cache, and the
     * answers after it are those of a model that was not warmed up, in each precision (int8's weight forms and bf16's
     * weight copies are made by the warm-up then). A closed model refuses it.
     */
    @ParameterizedTest
    @EnumSource(Precision.class)
    void warmUpLeavesTheModelAsItWas(Precision precision) throws Exception {
        Path dir = TinyBundle.write(tmp.resolve("w"), Padding.DYNAMIC);
        byte[] image = TinyBundle.png(7, 64, 48);
        VqaModel closed;
        try (VqaModel cold = VqaModel.load(dir, Device.cpu(), VqaModel.Options.defaults(), precision.code());
                VqaModel warm = VqaModel.load(dir, Device.cpu(), VqaModel.Options.defaults(), precision.code())) {
            assertEquals(precision, warm.precision());
            assertTrue(warm.warmUp() > 0);
            assertEquals(0, warm.imageCacheEntries(), "the warm-up's image is not cached");
            assertEquals(0, warm.imageCacheBytes());
            for (String question : QUESTIONS) {
                assertSame(List.of(warm.answer(image, question, 9)), List.of(cold.answer(image, question, 9)),
                        precision + ", after a warm-up: " + question);
            }
            assertEquals(1, warm.imageCacheEntries(), "the request's image is cached");
            closed = warm;
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, closed::warmUp);
        assertTrue(e.getMessage().contains("is closed"), e.getMessage());
    }

    @Test
    void cacheEvictsLeastRecentlyUsedWithinItsBound() throws Exception {
        Path dir = TinyBundle.write(tmp.resolve("m"), Padding.DYNAMIC);
        long one = (1 + 16) * 64 * 4;
        try (VqaModel m = VqaModel.load(dir, Device.cpu(), new VqaModel.Options(2 * one, 1_000_000))) {
            byte[] a = TinyBundle.png(1, 40, 40);
            byte[] b = TinyBundle.png(2, 40, 40);
            byte[] c = TinyBundle.png(3, 40, 40);
            m.answer(a, "q", 1);
            m.answer(b, "q", 1);
            m.answer(a, "q", 1); // a is now the most recent
            m.answer(c, "q", 1); // evicts b
            assertEquals(2, m.imageCacheEntries());
            assertEquals(2 * one, m.imageCacheBytes());
            assertTrue(m.answer(List.of(m.prepare(a, "q")), 1).get(0).imageCached(), "a kept");
            assertFalse(m.answer(List.of(m.prepare(b, "q")), 1).get(0).imageCached(), "b evicted");
        }
    }

    @Test
    void refusesBadInputWithTheReason() throws Exception {
        Path dir = TinyBundle.write(tmp.resolve("m"), Padding.DYNAMIC);
        try (VqaModel m = VqaModel.load(dir, Device.cpu(), new VqaModel.Options(0, 10_000))) {
            byte[] ok = TinyBundle.png(1, 50, 50);
            assertKind(InvalidInputException.Kind.MISSING_QUESTION, () -> m.prepare(ok, "  "));
            assertKind(InvalidInputException.Kind.NOT_AN_IMAGE, () -> m.prepare("hello".getBytes(), "q"));
            assertKind(InvalidInputException.Kind.TOO_MANY_PIXELS, () -> m.prepare(TinyBundle.png(1, 200, 60), "q"));
            assertKind(InvalidInputException.Kind.UNDECODABLE_IMAGE, () -> m.prepare(java.util.Arrays.copyOf(ok, 60), "q"));
            VqaModel.Query q = m.prepare(ok, "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen");
            assertTrue(q.truncated());
            assertEquals(16, q.usedTokens());
            assertEquals(17, q.questionTokens());
            assertEquals(3, m.answer(List.of(q), 3).get(0).answers().size(), "a truncated question is answered");
        }
    }

    private static void assertKind(InvalidInputException.Kind kind, org.junit.jupiter.api.function.Executable e) {
        InvalidInputException x = assertThrows(InvalidInputException.class, e);
        assertEquals(kind, x.kind(), x.getMessage());
    }
}
