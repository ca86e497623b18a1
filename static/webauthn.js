// latchkey's WebAuthn glue: buttons marked data-webauthn="register" or "authenticate" run a
// ceremony against the server's JSON endpoints and then follow the redirect it returns.
"use strict";

(function () {
  const message = document.getElementById("webauthn-message");

  // The page's own words for each message (data-* on #webauthn-message, in its language).
  function said(key, fallback) {
    return (message && message.dataset[key]) || fallback;
  }

  function show(text) {
    if (!message) { return; }
    message.textContent = text;
    message.hidden = false;
  }

  function toBytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let bin = "";
    for (const b of bytes) { bin += String.fromCharCode(b); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { /* an empty or non-JSON answer */ }
    if (!res.ok) { throw new Error(data.error || said("refused", "latchkey refused the request.")); }
    return data;
  }

  function explain(err) {
    switch (err && err.name) {
      case "NotAllowedError": return said("cancelled", "The request was cancelled or timed out. Try again when you are ready.");
      case "InvalidStateError": return said("duplicate", "This key is already registered to your account.");
      case "SecurityError": return said("insecure", "This page's address cannot use security keys.");
      case "NotSupportedError": return said("unsupported", "This authenticator does not support what latchkey needs.");
      default: return (err && err.message) || said("failed", "Something went wrong. Try again.");
    }
  }

  async function register(button) {
    const nameInput = document.getElementById(button.dataset.nameInput);
    const start = await post("/webauthn/register/start", {
      request: button.dataset.request || null,
      csrf: button.dataset.csrf,
      kind: button.dataset.kind,
      name: nameInput ? nameInput.value : "",
    });
    const pk = start.options.publicKey;
    pk.challenge = toBytes(pk.challenge);
    pk.user.id = toBytes(pk.user.id);
    (pk.excludeCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    const cred = await navigator.credentials.create({ publicKey: pk });
    const done = await post("/webauthn/register/finish", {
      ceremony: start.ceremony,
      credential: {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        extensions: cred.getClientExtensionResults(),
        response: {
          attestationObject: toB64url(cred.response.attestationObject),
          clientDataJSON: toB64url(cred.response.clientDataJSON),
          transports: cred.response.getTransports ? cred.response.getTransports() : [],
        },
      },
    });
    window.location.assign(done.redirect);
  }

  async function authenticate(button) {
    const start = await post(button.dataset.start || "/webauthn/authenticate/start", {
      request: button.dataset.request,
      csrf: button.dataset.csrf,
    });
    const pk = start.options.publicKey;
    pk.challenge = toBytes(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => { c.id = toBytes(c.id); });
    const cred = await navigator.credentials.get({ publicKey: pk });
    const r = cred.response;
    const done = await post(button.dataset.finish || "/webauthn/authenticate/finish", {
      ceremony: start.ceremony,
      credential: {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        extensions: cred.getClientExtensionResults(),
        response: {
          authenticatorData: toB64url(r.authenticatorData),
          clientDataJSON: toB64url(r.clientDataJSON),
          signature: toB64url(r.signature),
          userHandle: r.userHandle ? toB64url(r.userHandle) : null,
        },
      },
    });
    window.location.assign(done.redirect);
  }

  document.querySelectorAll("[data-webauthn]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (!window.PublicKeyCredential || !navigator.credentials) {
        show(said("noSupport", "This browser does not support security keys or passkeys. Use another method or another browser."));
        return;
      }
      button.disabled = true;
      if (message) { message.hidden = true; }
      try {
        await (button.dataset.webauthn === "register" ? register(button) : authenticate(button));
      } catch (err) {
        show(explain(err));
      } finally {
        button.disabled = false;
      }
    });
  });
})();
