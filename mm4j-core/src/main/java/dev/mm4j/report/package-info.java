/**
 * What runs leave for people to read: the metrics log ({@code metrics.jsonl}), loss/accuracy charts, the HTML report,
 * text tables and the progress bar.
 */
package dev.mm4j.report;
