package dev.mm4j.serve;

import static org.junit.jupiter.api.Assertions.*;

import ai.djl.Device;
import dev.mm4j.data.Padding;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
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
 * {@code target/serve-page.png}. Skipped when Chromium or chromedriver is not installed
 * ({@code apt-get install chromium chromium-driver}; .ci/run does it).
 */
class ServePageBrowserTest {
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");

    @TempDir Path tmp;

    @Test
    void askTwoQuestionsAboutAnUploadedImage() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(CHROMEDRIVER) && Files.isExecutable(CHROMIUM),
                "browser test skipped: " + CHROMIUM + " and " + CHROMEDRIVER
                        + " are needed (apt-get install chromium chromium-driver)");
        Path bundle = TinyBundle.write(tmp.resolve("model"), Padding.DYNAMIC);
        Path image = tmp.resolve("sign.png");
        Files.write(image, TinyBundle.png(5, 320, 200));
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1200,800", "--user-data-dir=" + tmp.resolve("chromium-profile"));
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile())
                .usingAnyFreePort().build();
        try (VqaModel model = VqaModel.load(bundle, Device.cpu());
                VqaServer server = VqaServer.start(model, VqaServer.Settings.defaults().withPort(0))) {
            List<Answer> want = model.answer(Files.readAllBytes(image), "what does the sign say?", 5);
            ChromeDriver browser = new ChromeDriver(service, options);
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
                Path shot = Path.of("target", "serve-page.png");
                Files.createDirectories(shot.getParent());
                Files.write(shot, ((TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES));
                assertTrue(Files.size(shot) > 10_000, "screenshot written to " + shot.toAbsolutePath());
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
