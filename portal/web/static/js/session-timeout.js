/* Warn before the idle timeout, offer to stay logged in, and return to the page after login.
 *
 * The body carries data-session-idle (seconds). Two minutes before the session would end a
 * dialog says so with "Fortsätt vara inloggad" (POST /auth/keepalive). If the time runs out,
 * the browser goes to the login with this page as the way back; a form with a draft
 * (form-draft.js) opens again from it. Any contact with the server resets the clock.
 */
(function () {
  "use strict";

  var WARN_BEFORE = 120;

  function init() {
    var idle = parseInt(document.body.getAttribute("data-session-idle") || "", 10);
    if (!idle) return;
    var token = document.querySelector("input[name=_csrf_token]");
    var warnTimer = null, endTimer = null, box = null;

    function returnPath() {
      return location.pathname + location.search;
    }

    function hide() {
      if (box) { box.remove(); box = null; }
    }

    function expired() {
      location.assign("/auth/login?next=" + encodeURIComponent(returnPath()));
    }

    function warn() {
      hide();
      box = document.createElement("div");
      box.className = "session-warning notice";
      box.setAttribute("role", "alertdialog");
      box.setAttribute("aria-labelledby", "session-warning-text");
      var text = document.createElement("p");
      text.id = "session-warning-text";
      text.textContent = "Du loggas ut om två minuter eftersom du inte har gjort något. " +
        "Det du har skrivit i formulär sparas som utkast.";
      var stay = document.createElement("button");
      stay.type = "button";
      stay.textContent = "Fortsätt vara inloggad";
      stay.addEventListener("click", keepAlive);
      box.appendChild(text);
      box.appendChild(stay);
      document.body.appendChild(box);
      stay.focus();
    }

    function schedule() {
      clearTimeout(warnTimer);
      clearTimeout(endTimer);
      warnTimer = setTimeout(warn, Math.max(idle - WARN_BEFORE, 1) * 1000);
      endTimer = setTimeout(expired, idle * 1000);
    }

    function keepAlive() {
      var headers = {};
      if (token) headers["X-CSRFToken"] = token.value;
      fetch("/auth/keepalive", {
        method: "POST",
        credentials: "same-origin",
        redirect: "manual", // a redirect means the session ended: not a success
        headers: headers
      })
        .then(function (response) {
          if (response.ok) { hide(); schedule(); } else { expired(); }
        })
        .catch(function () { /* try again from the dialog */ });
    }

    document.addEventListener("jourpost:server-contact", function () { hide(); schedule(); });
    schedule();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
