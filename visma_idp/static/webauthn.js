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
 *
 * Passkey autofill: where the browser has conditional mediation
 * (PublicKeyCredential.isConditionalMediationAvailable() resolves true), the
 * "passkey" element also starts navigator.credentials.get() with mediation
 * "conditional" and the prefetched options, so the browser lists the
 * passkeys in the autofill of the input with autocomplete="... webauthn".
 * A passkey picked there is submitted like the button's answer. That
 * request waits quietly: it never shows a message. The browser runs one
 * request at a time, so a press on the button aborts it (AbortController)
 * and, once it has ended, runs the usual one with the same options (an
 * aborted request did not use the challenge, and only one of the two can
 * ever answer). After a failure the options are fetched again, so the next
 * try has a fresh challenge, and autofill waits again with them; before
 * the challenge expires the waiting request is renewed the same way.
 * Without conditional mediation the page works as before.
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

  // Resolves true when the browser can offer passkeys in an input's autofill.
  function autofillAvailable() {
    var pkc = window.PublicKeyCredential;
    if (!pkc || typeof pkc.isConditionalMediationAvailable !== "function" ||
        typeof window.AbortController !== "function") {
      return Promise.resolve(false);
    }
    try {
      return Promise.resolve(pkc.isConditionalMediationAvailable()).then(function (yes) {
        return yes === true;
      }, function () {
        return false;
      });
    } catch (err) {
      return Promise.resolve(false);
    }
  }

  function quiet() { /* nothing to tell: the button stays */ }

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

    var busy = false;      // a ceremony runs, or its answer is on its way to the server
    var prefetched = null; // {at, json} for passkeys
    var loading = null;    // the options fetch under way; one at a time, so the
                           // challenge cookie always belongs to the options we use
    function load() {
      if (!loading) {
        prefetched = null;
        loading = fetchOptions(box).then(function (json) {
          loading = null;
          prefetched = { at: Date.now(), json: json };
          return json;
        }, function (err) {
          loading = null;
          throw err;
        });
      }
      return loading;
    }

    function fresh() {
      return prefetched && Date.now() - prefetched.at < OPTIONS_MAX_AGE ? prefetched.json : null;
    }

    function options() {
      if (kind !== "passkey") {
        return Promise.resolve(box.getAttribute("data-options"));
      }
      var json = fresh();
      return json ? Promise.resolve(json) : load();
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

    function submit(answer) {
      field.value = JSON.stringify(answer);
      form.submit();
    }

    // -- autofill (passkeys only): a conditional request waiting with the prefetched options

    var autofill = false;
    var waiting = null; // {controller, ended, timer} of the pending conditional request

    function listen() {
      var json = fresh();
      if (!autofill || busy || waiting || !json) {
        return;
      }
      var controller = new AbortController();
      var request;
      try {
        request = navigator.credentials.get({
          mediation: "conditional", publicKey: requestOptions(json), signal: controller.signal
        });
      } catch (err) {
        request = Promise.reject(err);
      }
      var mine = {
        controller: controller,
        ended: request.then(quiet, quiet),
        timer: setTimeout(function () { renew(mine); }, Math.max(OPTIONS_MAX_AGE - (Date.now() - prefetched.at), 0))
      };
      waiting = mine;
      request.then(function (cred) {
        if (waiting !== mine) {
          return; // the button was pressed meanwhile and runs its own request
        }
        var answer = assertionJSON(cred);
        stopListening();
        busy = true;
        button.setAttribute("aria-busy", "true");
        showError(box, "");
        submit(answer);
      }).catch(function () {
        if (waiting !== mine) {
          return; // our own abort (the button, a renewal), or it has answered
        }
        // the browser ended it by itself: no message (the user asked for
        // nothing), no new request (it might end the same way at once); the
        // button gets a fresh challenge
        stopListening();
        if (!busy) {
          load().catch(quiet);
        }
      });
    }

    // Abort the waiting request; resolves once it has ended (1 s at most).
    function stopListening() {
      var pending = waiting;
      waiting = null;
      if (!pending) {
        return Promise.resolve();
      }
      clearTimeout(pending.timer);
      pending.controller.abort();
      return new Promise(function (resolve) {
        pending.ended.then(resolve);
        setTimeout(resolve, 1000);
      });
    }

    // Fresh options for the waiting request before its challenge expires
    // (when the page is shown again if it is hidden by then).
    function renew(mine) {
      if (waiting !== mine || busy) {
        return;
      }
      if (document.hidden) {
        document.addEventListener("visibilitychange", function shown() {
          if (!document.hidden) {
            document.removeEventListener("visibilitychange", shown);
            renew(mine);
          }
        });
        return;
      }
      stopListening();
      load().then(listen, quiet);
    }

    if (kind === "passkey") {
      var ready = autofillAvailable();
      load().then(function () {
        return ready.then(function (yes) {
          autofill = yes;
          listen();
        });
      }).catch(quiet); // tried again on the button
    }

    button.addEventListener("click", function (event) {
      event.preventDefault();
      if (busy) {
        return;
      }
      busy = true;
      button.setAttribute("aria-busy", "true");
      showError(box, "");
      // the autofill request gives way; its challenge was not used, so the same options serve
      stopListening().then(options).then(ceremony).then(submit).catch(function (err) {
        busy = false;
        button.removeAttribute("aria-busy");
        showError(box, message(box, err));
        if (kind === "passkey") {
          // the next try (the button or autofill) with a fresh challenge
          prefetched = null;
          load().then(listen, quiet);
        }
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
