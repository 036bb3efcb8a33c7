/* Security keys and passkeys in the browser (visma_idp/factors/webauthn*.py).
 *
 * Every element with data-webauthn is one ceremony:
 *   data-webauthn="register"  registering a key: data-options holds the
 *                             options of navigator.credentials.create();
 *   data-webauthn="assert"    the second step of a sign-in: data-options
 *                             holds those of navigator.credentials.get();
 *   data-webauthn="passkey"   a sign-in without a password: the options are
 *                             fetched (POST, CSRF header) from
 *                             data-options-url when the page loads, so the
 *                             button calls the browser at once.
 * A press on its [data-webauthn-start] button runs the ceremony, puts the
 * answer (JSON, binary fields in base64url) into the hidden "credential"
 * input of the enclosing form and submits the form. When the browser cannot,
 * refuses or the user cancels, a translated message from the element's
 * data-msg-* attributes is shown in its [data-webauthn-error] element.
 */
(function () {
  "use strict";

  var OPTIONS_MAX_AGE = 240 * 1000; // the server keeps a challenge for 5 minutes

  // -- base64url <-> ArrayBuffer ------------------------------------------------------

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function fromBuffer(buffer) {
    if (!buffer) {
      return null;
    }
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: toBuffer(d.id) };
      if (d.transports) {
        out.transports = d.transports;
      }
      return out;
    });
  }

  function creationOptions(json) {
    var o = JSON.parse(json);
    o.challenge = toBuffer(o.challenge);
    o.user.id = toBuffer(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    var o = JSON.parse(json);
    o.challenge = toBuffer(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return o;
  }

  function registrationJSON(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: fromBuffer(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      response: {
        clientDataJSON: fromBuffer(r.clientDataJSON),
        attestationObject: fromBuffer(r.attestationObject),
        transports: typeof r.getTransports === "function" ? r.getTransports() : []
      },
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function assertionJSON(cred) {
    var r = cred.response;
    return {
      id: cred.id,
      rawId: fromBuffer(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      response: {
        clientDataJSON: fromBuffer(r.clientDataJSON),
        authenticatorData: fromBuffer(r.authenticatorData),
        signature: fromBuffer(r.signature),
        userHandle: fromBuffer(r.userHandle)
      },
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  // -- messages --------------------------------------------------------------------------

  function message(box, err) {
    var name = err && err.name;
    var key = "failed";
    if (name === "NotAllowedError" || name === "AbortError") {
      key = "cancelled";
    } else if (name === "InvalidStateError") {
      key = box.getAttribute("data-webauthn") === "register" ? "known" : "cancelled";
    } else if (name === "SecurityError") {
      key = "security";
    } else if (name === "NotSupportedError") {
      key = "unsupported";
    } else if (name === "NetworkError" || name === "TypeError") {
      key = "network";
    }
    return box.getAttribute("data-msg-" + key) || box.getAttribute("data-msg-failed") || "";
  }

  function showError(box, text) {
    var el = box.querySelector("[data-webauthn-error]");
    if (!el) {
      return;
    }
    el.textContent = text;
    el.hidden = !text;
  }

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials && navigator.credentials.create &&
              window.isSecureContext !== false);
  }

  // -- the ceremonies -------------------------------------------------------------------------

  function fetchOptions(box) {
    var form = box.querySelector("form") || box.closest("form");
    var token = form && form.querySelector('input[name="csrf_token"]');
    return fetch(box.getAttribute("data-options-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "", "Accept": "application/json" },
      cache: "no-store"
    }).then(function (resp) {
      if (!resp.ok) {
        var err = new Error("options: " + resp.status);
        err.name = "NetworkError";
        throw err;
      }
      return resp.text();
    });
  }

  function setUp(box) {
    var kind = box.getAttribute("data-webauthn");
    var button = box.querySelector("[data-webauthn-start]");
    var form = box.querySelector("form") || box.closest("form");
    var field = form && form.querySelector('input[name="credential"]');
    if (!button || !form || !field) {
      return;
    }
    if (!supported()) {
      if (kind === "passkey") {
        return; // the email and password way stays; nothing to offer
      }
      button.disabled = true;
      showError(box, box.getAttribute("data-msg-unsupported") || "");
      return;
    }
    if (kind === "passkey") {
      box.hidden = false;
    }

    var prefetched = null; // {at, json} for passkeys
    function load() {
      prefetched = null;
      return fetchOptions(box).then(function (json) {
        prefetched = { at: Date.now(), json: json };
        return json;
      });
    }
    if (kind === "passkey") {
      load().catch(function () { /* tried again on the button */ });
    }

    function options() {
      if (kind !== "passkey") {
        return Promise.resolve(box.getAttribute("data-options"));
      }
      if (prefetched && Date.now() - prefetched.at < OPTIONS_MAX_AGE) {
        return Promise.resolve(prefetched.json);
      }
      return load();
    }

    function ceremony(json) {
      if (!json) {
        var err = new Error("no options");
        err.name = "NetworkError";
        throw err;
      }
      if (kind === "register") {
        return navigator.credentials.create({ publicKey: creationOptions(json) }).then(registrationJSON);
      }
      return navigator.credentials.get({ publicKey: requestOptions(json) }).then(assertionJSON);
    }

    var busy = false;
    button.addEventListener("click", function (event) {
      event.preventDefault();
      if (busy) {
        return;
      }
      busy = true;
      button.setAttribute("aria-busy", "true");
      showError(box, "");
      options().then(ceremony).then(function (answer) {
        field.value = JSON.stringify(answer);
        form.submit();
      }).catch(function (err) {
        busy = false;
        button.removeAttribute("aria-busy");
        showError(box, message(box, err)); // the challenge is unused: the options stay good
      });
    });
  }

  function start() {
    var boxes = document.querySelectorAll("[data-webauthn]");
    for (var i = 0; i < boxes.length; i++) {
      setUp(boxes[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
