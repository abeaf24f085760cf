// The encounter form: red flags still unanswered stay marked; "all remaining red flags: No" fills the
// radios (the GP sees them and saves); the disposition strip announces only a change of disposition.
(function () {
  var form = document.getElementById("encounter-form");
  if (!form) return;

  function markAnswered(box) {
    box.classList.toggle("unanswered", !box.querySelector("input[value=yes]:checked, input[value=no]:checked"));
  }
  form.addEventListener("change", function (event) {
    var box = event.target.closest("fieldset.red-flag");
    if (box) markAnswered(box);
  });

  // Enter after typing a number is a reflex, not a decision to leave the form: it submits nothing here (the
  // GP saves with the buttons). Without JavaScript it saves the draft (the form's first, hidden button).
  form.addEventListener("keydown", function (event) {
    var field = event.target;
    if (event.key !== "Enter" || !field.matches("input") || field.matches("[type=submit], [type=button]")) return;
    event.preventDefault();
  });

  var allNo = document.getElementById("red-flags-no");
  if (allNo) {
    allNo.addEventListener("click", function (event) {
      event.preventDefault();
      var changed = 0;
      form.querySelectorAll("fieldset.red-flag").forEach(function (box) {
        if (box.querySelector("input[value=yes]:checked, input[value=no]:checked")) return;
        var no = box.querySelector("input[value=no]");
        if (no) { no.checked = true; changed += 1; markAnswered(box); }
      });
      var status = document.getElementById("red-flags-no-status");
      if (status) status.textContent = (status.dataset.template || "").replace("__N__", changed);
      if (changed) form.dispatchEvent(new Event("change", {bubbles: true}));
    });
  }

  // The live panel is re-rendered on every change; the small strip (a live region) is updated only
  // when what it says changes, so a screen reader hears the new disposition and nothing else.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "workup-panel") return;
    var summary = document.getElementById("panel-summary");
    var strip = document.getElementById("disposition-live");
    if (!summary || !strip) return;
    var text = summary.content.textContent.trim();
    if (strip.textContent.trim() !== text) strip.textContent = text;
    strip.dataset.disposition = summary.dataset.disposition || "";
  });
})();
