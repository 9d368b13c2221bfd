// Drives Debian's Chromium headless (playwright gives it a fresh temporary profile) through page.html; prints "pong" and exits 0 when the Rust
// node echoed the ping, else prints the page log and exits 1. Args: RDV_URL PEER_ID [TIMEOUT_MS]
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";
import path from "node:path";

const [rdv, peer, timeoutArg] = process.argv.slice(2);
if (!rdv || !peer) {
  console.error("usage: node run.mjs RDV_URL PEER_ID [TIMEOUT_MS]");
  process.exit(2);
}
const timeout = Number(timeoutArg || 30000);
const page_url = "file://" + path.join(path.dirname(fileURLToPath(import.meta.url)), "page.html") +
  "?rdv=" + encodeURIComponent(rdv) + "&peer=" + peer;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
let code = 1;
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error("console:", m.text()));
  await page.goto(page_url);
  try {
    await page.waitForFunction(() => window.result !== null, null, { timeout });
  } catch (e) {
    console.error("timed out waiting for the pong");
  }
  const result = await page.evaluate(() => window.result);
  console.error(await page.evaluate(() => document.getElementById("log").textContent));
  console.log(result);
  code = result === "pong" ? 0 : 1;
} finally {
  await browser.close();
}
process.exit(code);
