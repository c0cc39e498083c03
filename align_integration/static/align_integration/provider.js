/* Provider portal: on approve, capture the treatment plan panel with html2canvas as a
 * JPEG data URL into the form's acceptance_screenshot field, then submit (as the old
 * tool's template did). Revise submits as it is. */
(function () {
  "use strict";
  var panel = document.querySelector(".patient-info-comments");
  document.querySelectorAll(".provider-case-message-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var action = form.querySelector('input[name="action"]');
      if (!action || action.value !== "approve" || form.dataset.captured === "1") {
        return;
      }
      event.preventDefault();
      var button = form.querySelector("button");
      if (button) { button.disabled = true; }
      window.html2canvas(panel, { backgroundColor: "#ffffff", logging: false }).then(function (canvas) {
        form.querySelector('input[name="acceptance_screenshot"]').value = canvas.toDataURL("image/jpeg", 0.9);
        form.dataset.captured = "1";
        form.submit();
      }).catch(function () {
        if (button) { button.disabled = false; }
        window.alert("The treatment plan could not be captured; please try again.");
      });
    });
  });
})();
