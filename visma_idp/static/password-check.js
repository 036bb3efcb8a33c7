/* Live password check for templates/_password_fields.html.
 *
 * As the user types a new password, asks POST /password/check (debounced,
 * the newest answer wins) and lists every rule it breaks in the
 * aria-live list under the field; marks the repeat field when the two
 * differ. Only a help: the server checks everything again when the form
 * is posted, and the form works without this script.
 */
(function () {
  "use strict";

  var DELAY_MS = 300;
  var PERSON_FIELDS = ["email", "given_name", "family_name"];

  function setUp(box) {
    var url = box.getAttribute("data-password-check");
    var input = box.querySelector('input[name="password"]');
    var repeat = box.querySelector('input[name="password2"]');
    var problems = box.querySelector(".pw-problems");
    var repeatError = box.querySelector(".pw-repeat-error");
    var serverErrors = box.querySelector(".pw-server-errors");
    var form = input.form;
    var timer = null;
    var pending = null;
    var asked = 0;
    var repeatTouched = repeat.value !== "" || repeat.getAttribute("aria-invalid") === "true";

    function setInvalid(field, bad) {
      if (bad) {
        field.setAttribute("aria-invalid", "true");
      } else {
        field.removeAttribute("aria-invalid");
      }
    }

    function show(violations) {
      if (serverErrors) {
        serverErrors.hidden = true; // the live answer replaces the last post's
      }
      problems.textContent = "";
      violations.forEach(function (v) {
        var li = document.createElement("li");
        li.textContent = v.message;
        li.setAttribute("data-code", v.code);
        problems.appendChild(li);
      });
      if (!violations.length && input.value) {
        var ok = document.createElement("li");
        ok.className = "pw-ok";
        ok.textContent = box.getAttribute("data-ok");
        problems.appendChild(ok);
      }
      setInvalid(input, violations.length > 0);
    }

    function compare() {
      if (!repeatTouched) {
        return;
      }
      var differ = repeat.value !== input.value;
      repeatError.textContent = differ ? box.getAttribute("data-mismatch") : "";
      setInvalid(repeat, differ);
    }

    function check() {
      var password = input.value;
      var mine = ++asked;
      if (pending) {
        pending.abort();
        pending = null;
      }
      if (!password) {
        problems.textContent = "";
        setInvalid(input, false);
        return;
      }
      var body = { password: password };
      var link = box.getAttribute("data-link");
      if (link) {
        body.link = link;
      }
      if (form) {
        PERSON_FIELDS.forEach(function (name) {
          var field = form.elements.namedItem(name);
          if (field && typeof field.value === "string" && field.value) {
            body[name] = field.value;
          }
        });
      }
      pending = new AbortController();
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "Accept": "application/json",
          "X-CSRFToken": box.getAttribute("data-csrf")
        },
        body: JSON.stringify(body),
        signal: pending.signal
      }).then(function (resp) {
        return resp.ok ? resp.json() : null;
      }).then(function (answer) {
        if (answer && mine === asked) {
          show(answer.violations || []);
        }
      }).catch(function () {
        /* offline or aborted: the server still checks on submit */
      });
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(check, DELAY_MS);
      compare();
    });
    repeat.addEventListener("input", compare);
    repeat.addEventListener("change", function () {
      repeatTouched = true;
      compare();
    });
    repeat.addEventListener("blur", function () {
      if (repeat.value) {
        repeatTouched = true;
        compare();
      }
    });
    // typing in the repeat field counts once it is as long as the password
    repeat.addEventListener("input", function () {
      if (repeat.value.length >= input.value.length) {
        repeatTouched = true;
        compare();
      }
    });
  }

  function start() {
    var boxes = document.querySelectorAll("[data-password-check]");
    Array.prototype.forEach.call(boxes, setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
