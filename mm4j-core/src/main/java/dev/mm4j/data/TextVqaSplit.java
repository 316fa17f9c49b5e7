package dev.mm4j.data;

import java.util.Locale;

/** The three TextVQA splits and their names in the official release and on the Hugging Face hub. */
public enum TextVqaSplit {
    TRAIN("train", "train", "train_images"),
    VAL("val", "validation", "train_images"),
    TEST("test", "test", "test_images");

    private final String officialName;
    private final String hubName;
    private final String imagesDir;

    TextVqaSplit(String officialName, String hubName, String imagesDir) {
        this.officialName = officialName;
        this.hubName = hubName;
        this.imagesDir = imagesDir;
    }

    /** The name in {@code TextVQA_0.5.1_<name>.json} and in {@code set_name}: train, val, test. */
    public String officialName() {
        return officialName;
    }

    /** The name of the hub's parquet shards, {@code <name>-00000-of-000NN.parquet}: train, validation, test. */
    public String hubName() {
        return hubName;
    }

    /** The folder beside the json files that holds this split's images (val images live in train_images). */
    public String imagesDir() {
        return imagesDir;
    }

    /** The official json file name, {@code TextVQA_0.5.1_<split>.json}. */
    public String officialJsonName() {
        return "TextVQA_0.5.1_" + officialName + ".json";
    }

    /** Parses train, val, validation, test (any case; also dev/valid as val). */
    public static TextVqaSplit parse(String name) {
        if (name == null) {
            throw new IllegalArgumentException("split is missing (expected train, val|validation, test)");
        }
        switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "train":
                return TRAIN;
            case "val":
            case "validation":
            case "valid":
            case "dev":
                return VAL;
            case "test":
                return TEST;
            default:
                throw new IllegalArgumentException("unknown split '" + name + "' (expected train, val|validation, test)");
        }
    }
}
