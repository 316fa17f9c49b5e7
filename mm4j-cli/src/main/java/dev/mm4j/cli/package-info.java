/**
 * The command line, {@code ./mm4j} ({@link dev.mm4j.cli.Main}): one picocli command per task. Commands only parse
 * options and call the library ({@code train}, {@code eval}, {@code serve}, ...); nothing below imports this package.
 */
package dev.mm4j.cli;
