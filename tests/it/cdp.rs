//! A small Chrome DevTools Protocol client: headless Debian Chromium, driven over its
//! WebSocket, with a virtual WebAuthn authenticator. Only what the browser tests use.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and opens one page.
    pub fn launch() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-features=PasswordManagerOnboarding,AutofillServerCommunication",
                "--window-size=1100,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (scripts/test.sh installs it): {e}", chromium()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut endpoint = None;
        for line in stderr.lines() {
            let line = line.unwrap();
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                endpoint = Some(url.trim().to_string());
                break;
            }
        }
        let endpoint = endpoint.expect("Chromium printed no DevTools endpoint");
        let (ws, _) = tungstenite::connect(endpoint.as_str()).unwrap();
        let mut b = Browser { child, ws, session: String::new(), next_id: 0, _profile: profile };
        let target = b.call_browser("Target.createTarget", json!({ "url": "about:blank" }));
        let attached = b.call_browser("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }));
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        b.call("Page.enable", json!({}));
        b.call("Runtime.enable", json!({}));
        b
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_send(session, method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method} failed: {e}"),
        }
    }

    /// A command whose failure is an answer, not a test failure (e.g. evaluating while the page
    /// navigates: "execution context was destroyed").
    fn try_send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(Message::Text(msg.to_string().into())).unwrap();
        loop {
            let Message::Text(text) = self.ws.read().unwrap() else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    return Err(e.clone());
                }
                return Ok(v["result"].clone());
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(None, method, params)
    }

    /// A DevTools command on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    /// Adds a virtual authenticator: a platform one holding passkeys, or a USB security key.
    pub fn add_authenticator(&mut self, platform: bool, user_verified: bool) -> String {
        self.call("WebAuthn.enable", json!({ "enableUI": false }));
        let options = json!({
            "protocol": "ctap2",
            "transport": if platform { "internal" } else { "usb" },
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": user_verified,
            "automaticPresenceSimulation": true,
        });
        self.call("WebAuthn.addVirtualAuthenticator", json!({ "options": options }))["authenticatorId"].as_str().unwrap().to_string()
    }

    pub fn credentials(&mut self, authenticator: &str) -> Vec<Value> {
        self.call("WebAuthn.getCredentials", json!({ "authenticatorId": authenticator }))["credentials"].as_array().unwrap().clone()
    }

    pub fn goto(&mut self, url: &str) {
        // Mark the current document, so "loaded" means the new one, not the page we left.
        let session = self.session.clone();
        let _ = self.try_send(Some(&session), "Runtime.evaluate", json!({ "expression": "window.__lkOld = true" }));
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for("!window.__lkOld && document.readyState === 'complete' && location.href !== 'about:blank'");
    }

    /// Evaluates `js` in the page and returns its (JSON) value.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": js, "returnByValue": true, "awaitPromise": true }));
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{js} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits (up to 15 s) until `js` is true in the page, e.g. after a click that navigates.
    pub fn wait_for(&mut self, js: &str) {
        let start = Instant::now();
        loop {
            let session = self.session.clone();
            let r = self.try_send(Some(&session), "Runtime.evaluate", json!({ "expression": format!("!!({js})"), "returnByValue": true }));
            if r.is_ok_and(|r| r["result"]["value"] == true) {
                return;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let body = self.eval("document.body ? document.body.innerText : ''");
                let href = self.eval("location.href");
                panic!("timed out waiting for {js}\nat {href}\n{body}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn fill(&mut self, id: &str, value: &str) {
        // Under load a navigation may still be finishing: wait for the field first.
        self.wait_for(&format!("document.getElementById({})", json!(id)));
        self.eval(&format!("document.getElementById({}).value = {}", json!(id), json!(value)));
    }

    /// Clicks the element with `id`, and waits for the page to be ready if it navigated.
    pub fn click(&mut self, id: &str) {
        self.wait_for(&format!("document.getElementById({})", json!(id)));
        self.eval(&format!("document.getElementById({}).click()", json!(id)));
    }

    /// Submits the form holding the element with `id` (the person pressing Enter).
    pub fn submit(&mut self, id: &str) {
        self.wait_for(&format!("document.getElementById({})", json!(id)));
        self.eval(&format!("document.getElementById({}).form.requestSubmit()", json!(id)));
    }

    /// Emulates a screen `width`×`height` CSS pixels (a phone's when `mobile`).
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call("Emulation.setDeviceMetricsOverride", json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }));
    }

    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText").as_str().unwrap_or("").to_string()
    }

    /// Saves a PNG of what the screen shows under target/screenshots/ for a reviewer to look at.
    pub fn screenshot(&mut self, name: &str) {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        Self::save_png(name, &r);
    }

    /// Saves a PNG of the whole page at the screen's width, down to its end (what a reviewer
    /// scrolls through), under target/screenshots/.
    pub fn screenshot_page(&mut self, name: &str) {
        let width = self.eval("document.documentElement.clientWidth").as_f64().unwrap();
        let height = self.eval("Math.max(document.documentElement.scrollHeight, window.innerHeight)").as_f64().unwrap();
        let clip = json!({ "x": 0, "y": 0, "width": width, "height": height, "scale": 1 });
        let r = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true, "clip": clip }));
        Self::save_png(name, &r);
    }

    fn save_png(name: &str, r: &Value) {
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
