/* Upload progress for forms with file fields (progressive enhancement).
 *
 * Without JavaScript the form posts as usual. With it, a form whose file field has files is sent
 * with XMLHttpRequest so the upload can show a <progress> bar and an announced percentage; the
 * answer then replaces the page exactly as a normal submit would (the redirect target, or the
 * Swedish error page with the form and its messages). No inline script: CSP allows only 'self'.
 */
(function () {
  "use strict";

  function hasFiles(form) {
    var inputs = form.querySelectorAll("input[type=file]");
    for (var i = 0; i < inputs.length; i++) {
      if (inputs[i].files && inputs[i].files.length > 0) return true;
    }
    return false;
  }

  function statusBox(form) {
    var box = form.querySelector(".upload-progress");
    if (box) return box;
    box = document.createElement("p");
    box.className = "upload-progress";
    box.setAttribute("role", "status");
    box.setAttribute("aria-live", "polite");
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uppladdning");
    var text = document.createElement("span");
    box.appendChild(bar);
    box.appendChild(document.createTextNode(" "));
    box.appendChild(text);
    form.appendChild(box);
    return box;
  }

  function show(box, percent, message) {
    box.querySelector("progress").value = percent;
    box.querySelector("span").textContent = message;
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.enctype !== "multipart/form-data") return;
    if (!hasFiles(form) || !window.FormData || !window.XMLHttpRequest) return;
    event.preventDefault();
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) data.append(event.submitter.name, event.submitter.value);
    var buttons = form.querySelectorAll("button[type=submit]");
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    var box = statusBox(form);
    show(box, 0, "Laddar upp …");
    var xhr = new XMLHttpRequest();
    xhr.open(form.method || "POST", form.action);
    xhr.setRequestHeader("X-Upload-Progress", "1");
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var percent = Math.round((e.loaded / e.total) * 100);
      show(box, percent, "Laddar upp … " + percent + " %");
    });
    xhr.addEventListener("load", function () {
      show(box, 100, "Uppladdat.");
      if (xhr.status < 400 && xhr.responseURL && xhr.responseURL !== form.action) {
        window.location.assign(xhr.responseURL);
        return;
      }
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    xhr.addEventListener("error", function () {
      for (var i = 0; i < buttons.length; i++) buttons[i].disabled = false;
      show(box, 0, "Uppladdningen avbröts. Kontrollera anslutningen och försök igen.");
    });
    xhr.send(data);
  });
})();
