package dev.mm4j.serve;

import static org.junit.jupiter.api.Assertions.*;

import dev.mm4j.inference.TinyBundle;
import dev.mm4j.inference.Answer;
import dev.mm4j.inference.VqaModel;
import ai.djl.Device;
import dev.mm4j.data.Padding;
import dev.mm4j.inference.Embedder;
import dev.mm4j.search.ImageIndex;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The web page in a real browser: headless Chromium opens it, uploads a generated image, asks two
 * questions about it, reads the answers from the page and saves a screenshot to
 * {@code target/serve-page.png}; on the Search tab it searches a tiny index by a text and by an image and checks the
 * grid of thumbnails ({@code target/serve-search.png}). Skipped when Chromium or chromedriver is not installed
 * ({@code apt-get install chromium chromium-driver}; .ci/run does it).
 */
class ServePageBrowserTest {
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");

    @TempDir Path tmp;

    @BeforeEach
    void needsChromium() {
        Assumptions.assumeTrue(Files.isExecutable(CHROMEDRIVER) && Files.isExecutable(CHROMIUM),
                "browser test skipped: " + CHROMIUM + " and " + CHROMEDRIVER
                        + " are needed (apt-get install chromium chromium-driver)");
    }

    /** Headless Chromium. */
    private ChromeDriver browser() {
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1200,800", "--user-data-dir=" + tmp.resolve("chromium-profile"));
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile())
                .usingAnyFreePort().build();
        return new ChromeDriver(service, options);
    }

    private static void screenshot(ChromeDriver browser, String name) throws Exception {
        Path shot = Path.of("target", name);
        Files.createDirectories(shot.getParent());
        Files.write(shot, ((TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES));
        assertTrue(Files.size(shot) > 10_000, "screenshot written to " + shot.toAbsolutePath());
    }

    @Test
    void askTwoQuestionsAboutAnUploadedImage() throws Exception {
        Path bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path image = tmp.resolve("sign.png");
        Files.write(image, TinyBundle.png(5, 320, 200));
        try (VqaModel model = VqaModel.load(bundle, Device.cpu());
                ModelServer server = ModelServer.start(model, ModelServer.Settings.defaults().withPort(0))) {
            List<Answer> want = model.answer(Files.readAllBytes(image), "what does the sign say?", 5);
            ChromeDriver browser = browser();
            try {
                WebDriverWait wait = new WebDriverWait(browser, Duration.ofSeconds(30));
                browser.get(server.uri().toString());
                assertEquals("Multimodal4J — ask about an image", browser.getTitle());
                browser.findElement(By.id("file")).sendKeys(image.toString());
                wait.until(d -> d.findElement(By.id("preview")).isDisplayed());
                ask(browser, wait, "what does the sign say?", 1);
                List<WebElement> rows = browser.findElements(By.cssSelector("#answers .qa:first-child .answer"));
                assertEquals(5, rows.size(), "top 5 answers shown");
                for (int i = 0; i < 5; i++) {
                    assertEquals(want.get(i).answer(), rows.get(i).findElement(By.className("label")).getText());
                    assertEquals(String.format("%.1f%%", 100 * want.get(i).probability()),
                            rows.get(i).findElement(By.className("prob")).getText());
                }
                ask(browser, wait, "what colour is the box?", 2); // same image, not chosen again
                String meta = browser.findElement(By.cssSelector("#answers .qa:first-child .meta")).getText();
                assertTrue(meta.contains("image cache hit"), meta);
                assertFalse(browser.findElement(By.id("tab-search")).isDisplayed(), "no index: no search tab");
                screenshot(browser, "serve-page.png");
            } finally {
                browser.quit();
            }
        }
    }

    @Test
    void searchTabShowsTheHitsAsThumbnails() throws Exception {
        Path bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path index = TinyIndex.build(tmp, bundle, 14);
        String query = "a sign that says STOP104";
        try (VqaModel model = VqaModel.load(bundle, Device.cpu());
                ImageSearch search = ImageSearch.open(index, null, null, Device.cpu(), 1_000_000);
                Embedder embedder = Embedder.open(bundle, null, Device.cpu());
                ImageIndex reference = ImageIndex.open(index);
                ModelServer server = ModelServer.start(model, search, ModelServer.Settings.defaults().withPort(0))) {
            List<ImageIndex.Hit> want = reference.search(embedder.texts(List.of(query))[0], 12);
            ChromeDriver browser = browser();
            try {
                WebDriverWait wait = new WebDriverWait(browser, Duration.ofSeconds(30));
                browser.get(server.uri().toString());
                assertTrue(browser.findElement(By.id("ask-view")).isDisplayed(), "the Ask tab first");
                browser.findElement(By.id("tab-search")).click();
                assertFalse(browser.findElement(By.id("ask-view")).isDisplayed());
                browser.findElement(By.id("search-text")).sendKeys(query);
                browser.findElement(By.id("search-go")).click();
                wait.until(d -> d.findElements(By.cssSelector("#hits .hit")).size() == 12);
                List<WebElement> hits = browser.findElements(By.cssSelector("#hits .hit"));
                for (int i = 0; i < 12; i++) {
                    assertEquals(String.format("%.3f", want.get(i).score()), hits.get(i).findElement(By.className("score")).getText());
                    assertEquals(Path.of(want.get(i).path()).getFileName().toString(),
                            hits.get(i).findElement(By.className("name")).getText());
                }
                // every thumbnail was served and decoded by the browser: 160 x 100 (the images are 320 x 200)
                wait.until(d -> (Boolean) browser.executeScript("return Array.from(document.querySelectorAll('#hits img'))"
                        + ".every(function (i) { return i.complete; })"));
                @SuppressWarnings("unchecked")
                List<Long> widths = (List<Long>) browser.executeScript(
                        "return Array.from(document.querySelectorAll('#hits img')).map(function (i) { return i.naturalWidth; })");
                assertEquals(java.util.Collections.nCopies(12, 160L), widths);
                assertTrue(browser.findElement(By.id("search-status")).getText().startsWith("12 images for"),
                        browser.findElement(By.id("search-status")).getText());
                screenshot(browser, "serve-search.png");
                // image -> images: the uploaded image is the best hit, cosine 1
                browser.findElement(By.id("search-k")).clear();
                browser.findElement(By.id("search-k")).sendKeys("3");
                browser.findElement(By.id("search-file")).sendKeys(tmp.resolve("images/img109.png").toString());
                wait.until(d -> d.findElements(By.cssSelector("#hits .hit")).size() == 3);
                WebElement first = browser.findElement(By.cssSelector("#hits .hit"));
                assertEquals("img109.png", first.findElement(By.className("name")).getText());
                assertEquals("1.000", first.findElement(By.className("score")).getText());
            } finally {
                browser.quit();
            }
        }
    }

    private static void ask(ChromeDriver browser, WebDriverWait wait, String question, int blocks) {
        WebElement q = browser.findElement(By.id("question"));
        q.clear();
        q.sendKeys(question);
        browser.findElement(By.id("ask")).click();
        wait.until(d -> d.findElements(By.cssSelector("#answers .qa")).size() == blocks);
        assertEquals("Q: " + question, browser.findElement(By.cssSelector("#answers .qa:first-child h3")).getText());
    }
}
