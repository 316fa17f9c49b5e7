package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.ndarray.NDManager;
import dev.mm4j.flava.FlavaConfig;
import dev.mm4j.flava.FlavaForClassification;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointStoreTest {
    @TempDir
    Path out;

    static FlavaConfig tiny() throws Exception {
        return FlavaConfig.fromJson("{\"image_size\":16,\"patch_size\":8,\"image_hidden_size\":8,\"image_num_attention_heads\":2,"
                + "\"image_num_hidden_layers\":1,\"image_intermediate_size\":16,\"text_hidden_size\":8,\"text_num_attention_heads\":2,"
                + "\"text_num_hidden_layers\":1,\"text_intermediate_size\":16,\"vocab_size\":50,\"max_position_embeddings\":8,"
                + "\"multimodal_hidden_size\":8,\"multimodal_num_attention_heads\":2,\"multimodal_num_hidden_layers\":1,"
                + "\"multimodal_intermediate_size\":16,\"text_and_image_proj_size\":4,\"num_classes\":3,\"classifier_hidden_sizes\":8}");
    }

    @Test
    void aFailedWriteNeverReplacesTheGoodCheckpoint() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification model = FlavaForClassification.create(tiny(), m);
            CheckpointStore store = new CheckpointStore(out, 3);
            try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                TrainState st = new TrainState();
                st.step = 2;
                Path good = store.save(model, opt, st);
                byte[] goodWeights = Files.readAllBytes(good.resolve("model.safetensors"));
                float[] before = model.namedParameters().get("classifier.model.3.weight").array().toFloatArray();

                // the next save dies half-way: one parameter can no longer be read
                model.namedParameters().get("model.mm_encoder.pooler.dense.weight").array().close();
                st.step = 4;
                assertThrows(Exception.class, () -> store.save(model, opt, st));

                assertEquals(good, store.latest(), "latest still names the good checkpoint");
                assertFalse(Files.exists(store.dir().resolve("step-00000004")));
                assertArrayEquals(goodWeights, Files.readAllBytes(good.resolve("model.safetensors")));
                try (Stream<Path> s = Files.list(store.dir())) {
                    assertTrue(s.noneMatch(p -> p.getFileName().toString().contains(".tmp")), "no temp folder left");
                }
                // and it restores into a fresh model
                FlavaForClassification fresh = FlavaForClassification.create(tiny(), m);
                try (AdamW opt2 = new AdamW(fresh.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                    TrainState restored = CheckpointStore.restore(good, fresh, opt2);
                    assertEquals(2, restored.step);
                    assertArrayEquals(before, fresh.namedParameters().get("classifier.model.3.weight").array().toFloatArray());
                }
            }
        }
    }

    @Test
    void keepsTheLastKCheckpoints() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification model = FlavaForClassification.create(tiny(), m);
            CheckpointStore store = new CheckpointStore(out, 2);
            try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                for (long step : new long[] {1, 2, 3, 4}) {
                    TrainState st = new TrainState();
                    st.step = step;
                    store.save(model, opt, st);
                }
                store.saveBest(model, opt, new TrainState());
            }
            try (Stream<Path> s = Files.list(store.dir())) {
                assertEquals(java.util.Set.of("step-00000003", "step-00000004", "latest", "best"),
                        s.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet()));
            }
            assertEquals(store.dir().resolve("step-00000004"), store.latest());
            // folders and files as the umask makes them (before: rwx------ and rw-------)
            Path plain = Files.createDirectory(out.resolve("plain"));
            Path plainFile = Files.createFile(out.resolve("plain.txt"));
            var perms = (java.util.function.Function<Path, Object>) p -> {
                try {
                    return java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            };
            assertEquals(perms.apply(plain), perms.apply(store.latest()));
            assertEquals(perms.apply(plainFile), perms.apply(store.latest().resolve("model.safetensors")));
        }
    }

    @Test
    void aNewRunRemovesWhatKilledRunsLeftAndOnlyOneRunHoldsTheFolder() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            FlavaForClassification model = FlavaForClassification.create(tiny(), m);
            CheckpointStore store = new CheckpointStore(out, 2);
            try (AdamW opt = new AdamW(model.namedParameters(), AdamW.Settings.torchDefaults(), m)) {
                TrainState st = new TrainState();
                st.step = 1;
                store.save(model, opt, st);
                store.saveBest(model, opt, st);
            }
            Path cp = store.dir();
            // what kills at various moments leave: unfinished checkpoint folders, a best moved aside whose
            // replacement never arrived, a half-pruned old checkpoint, temp files of atomic writes
            Files.createDirectories(cp.resolve(".step-00000002.tmp-123").resolve("x"));
            Files.createDirectories(cp.resolve(".best.tmp-456"));
            Files.move(cp.resolve("best"), cp.resolve(".best.old-789"));
            Files.createDirectories(cp.resolve(".step-00000000.pruned-5"));
            Files.writeString(cp.resolve(".latest.8234234.tmp"), "step-0000");
            Files.writeString(out.resolve(".settings.yaml.9912.tmp"), "half");
            Files.createDirectories(out.resolve("model"));
            Files.writeString(out.resolve("model").resolve(".model.safetensors.77.tmp"), "half");
            Files.writeString(out.resolve("notes.tmp"), "a user's file: not ours");
            try (dev.mm4j.util.DirectoryLock lock = store.lockOutput()) {
                try (Stream<Path> s = Files.list(cp)) {
                    assertEquals(java.util.Set.of("step-00000001", "latest", "best"),
                            s.map(p -> p.getFileName().toString()).collect(java.util.stream.Collectors.toSet()));
                }
                assertTrue(Files.isRegularFile(cp.resolve("best").resolve("model.safetensors")), "best was put back");
                assertFalse(Files.exists(out.resolve(".settings.yaml.9912.tmp")));
                assertFalse(Files.exists(out.resolve("model").resolve(".model.safetensors.77.tmp")));
                assertTrue(Files.exists(out.resolve("notes.tmp")));
                // a second run on the same folder (here: in the same process) is refused, naming the folder
                java.io.IOException e = assertThrows(java.io.IOException.class, store::lockOutput);
                assertTrue(e.getMessage().startsWith(out + " is in use by a fine-tuning run"), e.getMessage());
            }
            store.lockOutput().close(); // released: the next run may go
        }
    }
}
