/**
 * A consumer of Multimodal4J on the module path: the library's jars are automatic modules named in their manifests
 * ({@code Automatic-Module-Name}); libtorch's native jar (resources only) stays on the class path.
 */
module example.modular {
    requires mm4j.core;
    requires mm4j.inference;
    requires ai.djl.api; // ai.djl.Device, to open the Embedder on the CPU
}
