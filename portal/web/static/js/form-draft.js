/* Form drafts: a half-written form survives a session timeout (progressive enhancement).
 *
 * A form with data-draft="KEY" is saved to /drafts/KEY a couple of seconds after the last change
 * (and at most every 15 s while typing goes on), with the page's CSRF token. After the next
 * login the form opens from the saved draft (the server fills it in). Files are never saved.
 * Each successful save tells session-timeout.js that the server saw us (the session lives on).
 */
(function () {
  "use strict";

  function fields(form) {
    var out = {};
    var data = new FormData(form);
    data.forEach(function (value, name) {
      if (typeof value !== "string" || name.charAt(0) === "_") return;
      if (Object.prototype.hasOwnProperty.call(out, name)) {
        if (!Array.isArray(out[name])) out[name] = [out[name]];
        out[name].push(value);
      } else {
        out[name] = value;
      }
    });
    // Repeated names with one value checked (e.g. one action) still travel as a list.
    form.querySelectorAll("input[type=checkbox][name]").forEach(function (box) {
      if (box.checked && !Array.isArray(out[box.name]) && form.querySelectorAll(
        "input[type=checkbox][name='" + box.name + "']").length > 1) {
        out[box.name] = [out[box.name]];
      }
    });
    return out;
  }

  function start(form) {
    var key = form.getAttribute("data-draft");
    var token = form.querySelector("input[name=_csrf_token]");
    if (!key || !token) return;
    var timer = null, lastSent = "", lastSave = 0;

    function save() {
      timer = null;
      var body = JSON.stringify({ fields: fields(form) });
      if (body === lastSent) return;
      lastSave = Date.now();
      fetch("/drafts/" + encodeURIComponent(key), {
        method: "POST",
        credentials: "same-origin",
        redirect: "manual", // a redirect means the session ended: not a success
        headers: { "Content-Type": "application/json", "X-CSRFToken": token.value },
        body: body
      }).then(function (response) {
        if (response.ok) {
          lastSent = body;
          form.setAttribute("data-draft-saved", String(Date.now()));
          document.dispatchEvent(new CustomEvent("jourpost:server-contact"));
        }
      }).catch(function () { /* offline for a moment: the next change tries again */ });
    }

    function changed() {
      if (timer) clearTimeout(timer);
      var wait = Date.now() - lastSave > 15000 ? 300 : 2000;
      timer = setTimeout(save, wait);
    }

    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
  }

  function init() {
    document.querySelectorAll("form[data-draft]").forEach(start);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
