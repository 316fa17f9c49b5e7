/**
 * Small shared helpers with no project dependencies: atomic file writes, directory locks, file trees, hardware and
 * threads, image I/O, the native heap.
 */
package dev.mm4j.util;
