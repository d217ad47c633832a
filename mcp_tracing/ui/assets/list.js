// mcp-tracing ui: the trace list. The filters are `mcp-tracing traces`'s, kept in the address (a filtered list can
// be bookmarked); new traces appear by themselves: the store's version is polled, the list read again when it moves.
(function () {
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  const form = $("filters"), body = $("rows"), status = $("status");
  const fields = ["search", "slower_than", "since", "where", "limit"];
  let version = null, known = null, pending = null;

  function query() {
    const params = new URLSearchParams();
    for (const name of fields) {
      const value = $(name).value.trim();
      if (!value) continue;
      if (name === "where") value.split(";").map((w) => w.trim()).filter(Boolean).forEach((w) => params.append("where", w));
      else params.set(name, value);
    }
    if ($("errors").checked) params.set("errors", "1");
    return params;
  }
  function fill(params) {
    for (const name of fields) $(name).value = name === "where" ? params.getAll("where").join("; ") : params.get(name) || "";
    $("errors").checked = params.get("errors") === "1";
  }
  async function load(quiet) {
    const params = query();
    const address = "?" + params.toString();
    if (address !== location.search && !(address === "?" && !location.search)) history.replaceState(null, "", address);
    const asked = params.toString();
    pending = asked;
    let answer;
    try {
      const response = await fetch("api/traces?" + asked, { headers: { Accept: "application/json" } });
      answer = await response.json();
      if (!response.ok) throw new Error(answer.error || response.statusText);
    } catch (error) {
      if (pending !== asked) return;
      status.className = "bad";
      status.textContent = String(error.message || error);
      return;
    }
    if (pending !== asked) return;  // a newer request is on its way
    version = answer.version;
    show(answer, quiet);
  }
  function show(answer, quiet) {
    const before = known;
    known = new Set(answer.traces.map((t) => t.trace_id));
    body.replaceChildren();
    for (const trace of answer.traces) {
      const tr = el("tr", "trace");
      tr.dataset.traceId = trace.trace_id;
      if (quiet && before && !before.has(trace.trace_id)) tr.classList.add("new");
      const started = new Date(trace.start_unix_ms);
      const root = el("td", "root");
      const link = el("a", "", trace.root);
      link.href = "traces/" + trace.trace_id;
      root.appendChild(link);
      const services = el("td", "services");
      trace.services.forEach((name) => services.appendChild(el("span", "chip", name)));
      if (trace.lost_servers.length) services.appendChild(el("span", "lost", "⚠ no spans from " + trace.lost_servers.join(", ")));
      tr.append(el("td", "start", started.toLocaleString()), root, services, el("td", "num duration", duration(trace.duration_ms * 1e6)),
        el("td", "num spans", trace.spans), el("td", "num errors" + (trace.errors ? " some" : ""), trace.errors),
        el("td", "num findings" + (trace.findings ? " some" : ""), trace.findings), el("td", "id", trace.trace_id.slice(0, 12)));
      tr.addEventListener("click", (event) => { if (!event.target.closest("a")) location.href = link.href; });
      body.appendChild(tr);
    }
    status.className = "";
    const count = answer.traces.length;
    status.textContent = (answer.notes.length ? answer.notes.join("; ") + ". " : "") +
      count + (count === 1 ? " trace" : " traces") + (count ? ", newest first" : "") + "; new ones appear by themselves";
  }
  async function poll() {
    try {
      const response = await fetch("api/version");
      if (response.ok) {
        const answer = await response.json();
        if (version !== null && answer.version !== version) await load(true);
        else if (version === null) version = answer.version;
      }
    } catch (error) {
      status.className = "bad";
      status.textContent = "the server is not answering (" + (error.message || error) + ")";
    }
    setTimeout(poll, POLL_MS);
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); load(false); });
  $("errors").addEventListener("change", () => load(false));
  fill(new URLSearchParams(location.search));
  load(false).then(() => setTimeout(poll, POLL_MS));
})();
