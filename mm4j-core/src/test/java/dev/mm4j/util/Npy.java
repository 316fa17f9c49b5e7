package dev.mm4j.util;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A minimal reader for NumPy {@code .npy} files holding little-endian float32, C order (version 1/2/3). */
public final class Npy {
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    /** A float32 array and its shape. */
    public record FloatArray(int[] shape, float[] data) {
        @Override
        public String toString() {
            return "FloatArray" + Arrays.toString(shape);
        }
    }

    private Npy() {}

    public static FloatArray readFloat(Path path) throws IOException {
        try (InputStream in = Files.newInputStream(path)) {
            return readFloat(in, path.toString());
        }
    }

    public static FloatArray readFloat(InputStream in, String name) throws IOException {
        byte[] all = in.readAllBytes();
        if (all.length < 10 || (all[0] & 0xff) != 0x93 || !new String(all, 1, 5, StandardCharsets.ISO_8859_1).equals("NUMPY")) {
            throw new IOException(name + ": not a .npy file (bad magic)");
        }
        int major = all[6] & 0xff;
        ByteBuffer bb = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        int headerLen;
        int offset;
        if (major == 1) {
            headerLen = bb.getShort(8) & 0xffff;
            offset = 10;
        } else {
            headerLen = bb.getInt(8);
            offset = 12;
        }
        String header = new String(all, offset, headerLen, StandardCharsets.ISO_8859_1);
        Matcher d = DESCR.matcher(header);
        Matcher f = FORTRAN.matcher(header);
        Matcher s = SHAPE.matcher(header);
        if (!d.find() || !f.find() || !s.find()) {
            throw new IOException(name + ": unreadable .npy header: " + header.trim());
        }
        if (!d.group(1).equals("<f4")) {
            throw new IOException(name + ": dtype " + d.group(1) + " not supported (only <f4)");
        }
        if (f.group(1).equals("True")) {
            throw new IOException(name + ": fortran_order arrays not supported");
        }
        int[] shape = Arrays.stream(s.group(1).split(","))
                .map(String::trim).filter(x -> !x.isEmpty()).mapToInt(Integer::parseInt).toArray();
        long n = 1;
        for (int dim : shape) {
            n *= dim;
        }
        int dataStart = offset + headerLen;
        if (all.length - dataStart != n * 4) {
            throw new IOException(name + ": expected " + n * 4 + " data bytes for shape " + Arrays.toString(shape)
                    + ", found " + (all.length - dataStart));
        }
        float[] data = new float[(int) n];
        bb.position(dataStart);
        bb.asFloatBuffer().get(data);
        return new FloatArray(shape, data);
    }
}
