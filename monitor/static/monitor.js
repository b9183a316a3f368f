// Saga monitor: re-fetch every [data-live] fragment every few seconds, without a reload.
// The server answers 304 when a fragment did not change, so an idle page costs little.
(function () {
  "use strict";
  const period = Number(document.body.dataset.refreshMs) || 2000;
  const tags = new WeakMap();

  async function refresh(region) {
    const headers = {};
    const etag = tags.get(region);
    if (etag) headers["If-None-Match"] = etag;
    let response;
    try {
      response = await fetch(region.dataset.live, { headers, credentials: "same-origin" });
    } catch (error) {
      region.dataset.stale = "unreachable";
      return;
    }
    if (response.status === 304) return;
    if (!response.ok) {
      region.dataset.stale = String(response.status);
      return;
    }
    delete region.dataset.stale;
    tags.set(region, response.headers.get("ETag"));
    region.innerHTML = await response.text();
    syncOperator();
  }

  // The operator's forms show only while the saga waits for an operator (the live part says).
  function syncOperator() {
    const state = document.querySelector("[data-waiting]");
    const forms = document.querySelector("section.operator");
    if (state && forms) forms.hidden = state.dataset.waiting !== "yes";
  }

  // An operator action is posted in the background: the page stays, says what came of it,
  // and its live parts show the saga change. Without script the form posts as usual.
  async function act(event) {
    const form = event.target.closest("form.act");
    if (!form) return;
    event.preventDefault();
    const said = document.querySelector(".act-result");
    const buttons = Array.from(form.querySelectorAll("button"));
    const tell = (text, failed) => {
      said.hidden = false;
      said.textContent = text;
      said.classList.toggle("error", failed);
      said.classList.toggle("done", !failed);
    };
    buttons.forEach((b) => { b.disabled = true; });
    tell("working…", false);
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
      });
      if (response.ok) {
        const what = form.action.endsWith("/retry") ? "retry of the failed compensation"
          : form.action.endsWith("/retry-step") ? "retry of the failed step" : "resolution";
        tell(what + " recorded; its result shows below.", false);
      } else {
        const text = await response.text();
        const line = new DOMParser().parseFromString(text, "text/html").querySelector(".error");
        tell((line ? line.textContent : text).trim() || String(response.status), true);
      }
    } catch (error) {
      tell("the monitor did not answer; try again", true);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
    await Promise.all(Array.from(document.querySelectorAll("[data-live]"), refresh));
  }

  document.addEventListener("submit", act);

  async function tick() {
    if (!document.hidden) {
      await Promise.all(Array.from(document.querySelectorAll("[data-live]"), refresh));
    }
    window.setTimeout(tick, period);
  }

  window.setTimeout(tick, period);
})();
