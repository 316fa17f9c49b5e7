package dev.mm4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class LrScheduleTest {
    static final double EPS = 1e-12;

    @Test
    void cosineWithWarmup() {
        LrSchedule s = LrSchedule.cosine(1e-4, 100, 1100);
        assertEquals(0.0, s.lr(0), EPS);
        assertEquals(0.5e-4, s.lr(50), EPS);        // mid-warmup
        assertEquals(0.99e-4, s.lr(99), EPS);
        assertEquals(1e-4, s.lr(100), EPS);         // end of warmup
        assertEquals(0.5e-4, s.lr(600), EPS);       // half-way through the decay: cos(pi/2) = 0
        assertEquals(1e-4 * 0.5 * (1 + Math.cos(Math.PI * 0.25)), s.lr(350), EPS);
        assertEquals(0.0, s.lr(1100), EPS);         // end
    }

    @Test
    void cosineToMinRatio() {
        LrSchedule s = LrSchedule.cosine(1.0, 10, 110, 0.1);
        assertEquals(0.0, s.lr(0), EPS);
        assertEquals(1.0, s.lr(10), EPS);
        assertEquals(0.5 * 0.9 + 0.1, s.lr(60), EPS);
        assertEquals(0.1, s.lr(110), EPS);
    }

    @Test
    void linearWithWarmup() {
        LrSchedule s = LrSchedule.linear(2e-5, 10, 110);
        assertEquals(0.0, s.lr(0), EPS);
        assertEquals(1e-5, s.lr(5), EPS);
        assertEquals(2e-5, s.lr(10), EPS);
        assertEquals(1e-5, s.lr(60), EPS);
        assertEquals(0.0, s.lr(110), EPS);
        assertEquals(0.0, s.lr(500), EPS);          // clamped at 0 past the end
        LrSchedule m = LrSchedule.linear(1.0, 0, 100, 0.2);
        assertEquals(1.0, m.lr(0), EPS);
        assertEquals(0.6, m.lr(50), EPS);
        assertEquals(0.2, m.lr(100), EPS);
    }

    @Test
    void constant() {
        assertEquals(3e-4, LrSchedule.constant(3e-4, 0).lr(0), EPS);
        assertEquals(3e-4, LrSchedule.constant(3e-4, 0).lr(123456), EPS);
        LrSchedule w = LrSchedule.constant(1.0, 4);
        assertEquals(0.0, w.lr(0), EPS);
        assertEquals(0.5, w.lr(2), EPS);
        assertEquals(1.0, w.lr(4), EPS);
        assertEquals(1.0, w.lr(1000), EPS);
    }

    @Test
    void noWarmupStartsAtPeak() {
        assertEquals(1.0, LrSchedule.cosine(1.0, 0, 10).lr(0), EPS);
        assertEquals(1.0, LrSchedule.linear(1.0, 0, 10).lr(0), EPS);
        assertEquals(0.9, LrSchedule.linear(1.0, 0, 10).lr(1), EPS);
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.cosine(1.0, 20, 10));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.linear(1.0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.cosine(1.0, 0, 10, 1.5));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.cosine(1.0, 0, 10).lr(-1));
        assertEquals(LrSchedule.Kind.COSINE, LrSchedule.Kind.parse(" Cosine "));
    }
}
