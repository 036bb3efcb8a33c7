/* The proof-of-work of the forgot-password form (visma_idp/password/challenge.py).
 *
 * For every element with data-pow: take the signed challenge from its
 * hidden "pow_challenge" input and find a counter such that
 * SHA-256(challenge + ":" + counter) starts with data-difficulty zero bits
 * (Web Crypto). The counter goes into the hidden "pow" input. The work starts
 * when the page loads; a submit before it is done waits for it and then goes
 * on by itself. The texts come translated from the page (data-* attributes).
 */
(function () {
  "use strict";

  var BATCH = 256;

  function zeroBits(bytes) {
    var bits = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) {
        bits += 8;
        continue;
      }
      return bits + Math.clz32(bytes[i]) - 24;
    }
    return bits;
  }

  function solve(challenge, difficulty, onProgress) {
    var encoder = new TextEncoder();
    var prefix = challenge + ":";
    var expected = Math.pow(2, difficulty);
    var counter = 0;

    function batch() {
      var start = counter;
      var hashes = [];
      for (var i = 0; i < BATCH; i++) {
        hashes.push(crypto.subtle.digest("SHA-256", encoder.encode(prefix + (start + i))));
      }
      counter += BATCH;
      return Promise.all(hashes).then(function (results) {
        for (var j = 0; j < results.length; j++) {
          if (zeroBits(new Uint8Array(results[j])) >= difficulty) {
            return String(start + j);
          }
        }
        // chance that a solution would have turned up by now
        onProgress(1 - Math.exp(-counter / expected));
        return batch();
      });
    }

    return batch();
  }

  function setUp(box) {
    var form = box.closest("form");
    var challengeInput = box.querySelector('input[name="pow_challenge"]');
    var answerInput = box.querySelector('input[name="pow"]');
    var status = box.querySelector("[data-pow-status]");
    var bar = box.querySelector("progress");
    if (!form || !challengeInput || !answerInput) {
      return;
    }
    box.hidden = false;
    if (!window.crypto || !window.crypto.subtle || !window.TextEncoder || !window.Promise) {
      status.textContent = box.getAttribute("data-unsupported");
      status.classList.add("error");
      return;
    }

    var done = false;
    var waiting = false;
    status.textContent = box.getAttribute("data-working");

    form.addEventListener("submit", function (event) {
      if (done) {
        return;
      }
      event.preventDefault();
      waiting = true;
      status.textContent = box.getAttribute("data-waiting");
    });

    solve(challengeInput.value, parseInt(box.getAttribute("data-difficulty"), 10) || 1, function (share) {
      if (bar) {
        bar.value = Math.min(99, Math.round(share * 100));
      }
    }).then(function (answer) {
      answerInput.value = answer;
      done = true;
      if (bar) {
        bar.value = 100;
      }
      status.textContent = box.getAttribute("data-done");
      if (waiting) {
        if (form.requestSubmit) {
          form.requestSubmit();
        } else {
          form.submit();
        }
      }
    }, function () {
      status.textContent = box.getAttribute("data-unsupported");
      status.classList.add("error");
    });
  }

  function start() {
    var boxes = document.querySelectorAll("[data-pow]");
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
