// The error summary: on load, focus the first field in error; each link focuses its field (not only scrolls).
(function () {
  function focusField(id) {
    var target = document.getElementById(id);
    if (!target) return false;
    var field = target.matches("input, select, textarea, button, a[href]") ? target
      : target.querySelector("input, select, textarea");
    (field || target).focus();
    (field || target).scrollIntoView({block: "center"});
    return true;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-error-summary] a[data-focus]");
    if (link && focusField(link.dataset.focus)) event.preventDefault();
  });
  document.addEventListener("DOMContentLoaded", function () {
    var first = document.querySelector("[data-error-summary] a[data-focus]");
    if (first) focusField(first.dataset.focus);
  });
})();


// The print view's button (no inline handlers: the Content-Security-Policy allows scripts from files only).
document.addEventListener("click", function (event) {
  if (event.target.closest("[data-print]")) window.print();
});


// A long form typed into and not saved yet (or sent back with errors): leaving the page by a link, the language
// switch, reload or closing the tab asks first, so ten minutes of history are not lost to one click. Saving it
// does not ask.
(function () {
  var forms = document.querySelectorAll("form[data-guard-unsaved]");
  if (!forms.length) return;
  var unsaved = false;
  forms.forEach(function (form) {
    if (form.dataset.guardUnsaved === "bound") unsaved = true;
    form.addEventListener("input", function () { unsaved = true; });
    form.addEventListener("change", function () { unsaved = true; });
    form.addEventListener("submit", function () { unsaved = false; });
  });
  window.addEventListener("beforeunload", function (event) {
    if (!unsaved) return;
    event.preventDefault();
    event.returnValue = "";
  });
})();


// "Select all" above a list of checkboxes (the results acknowledged together): none is ticked at first, so an older
// result unrelated to what the GP acts on is not signed off by accident; one click ticks them all. Without
// JavaScript the button stays hidden and each box is ticked by hand.
(function () {
  document.querySelectorAll("[data-select-all]").forEach(function (button) { button.hidden = false; });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-select-all]");
    if (!button || !button.form) return;
    button.form.querySelectorAll("input[type=checkbox]").forEach(function (box) { box.checked = true; });
  });
})();
