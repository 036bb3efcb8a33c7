/* The agreement chooser's search box (templates/login/choose_agreement.html):
 * as the person types, hide the companies whose name and organisation number
 * do not contain the text; "no company matches" shows when none is left.
 * Without script the box searches on the server (the q parameter). */
(function () {
  "use strict";
  var input = document.querySelector("[data-agreement-filter]");
  if (!input) {
    return;
  }
  var items = document.querySelectorAll("#agreement-list li");
  var none = document.querySelector("[data-agreement-none]");
  function filter() {
    var text = input.value.trim().toLowerCase();
    var shown = 0;
    for (var i = 0; i < items.length; i++) {
      var match = !text || items[i].getAttribute("data-search").indexOf(text) !== -1;
      items[i].hidden = !match;
      if (match) {
        shown++;
      }
    }
    if (none) {
      none.hidden = shown > 0;
    }
  }
  input.addEventListener("input", filter);
  input.form.addEventListener("submit", function (event) {
    event.preventDefault();
    filter();
  });
})();
