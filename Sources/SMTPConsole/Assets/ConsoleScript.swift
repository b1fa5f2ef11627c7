/// The console's one script, served as `/assets/console.js` (never inline: the
/// Content-Security-Policy allows scripts from the console's own origin only).
///
/// It keeps the Sessions list live: every 2 s it asks `/api/sessions` for the sessions matching
/// the page's filters that started since the table's `data-live-since` (an RFC 3339 time, or an
/// age such as `10m` that the server reads against its clock), and inserts the ones the table does
/// not have yet, in start order, newest first. Rows are built with `textContent` and
/// `setAttribute` only, never `innerHTML`, so a record's values stay text. A row holds the same
/// cells as `SessionRow.html`.
public enum ConsoleScript {
    public static let source = #"""
        "use strict";
        (function () {
          const table = document.getElementById("sessions");
          if (!table || !table.dataset.liveSince) return;
          const body = table.tBodies[0];
          const status = document.getElementById("live-status");
          const query = table.dataset.liveQuery;
          const since = table.dataset.liveSince;
          const known = new Set(Array.from(body.rows, (row) => row.dataset.session));

          function address(value) {
            if (value === null || value === undefined) return "?";
            return value === "" ? "<>" : value;
          }
          function unique(values) { return Array.from(new Set(values)); }
          function cell(row, text, className) {
            const td = document.createElement("td");
            td.textContent = text;
            if (className) td.className = className;
            row.appendChild(td);
            return td;
          }
          function sessionRow(record) {
            const transactions = record.transactions || [];
            const row = document.createElement("tr");
            row.setAttribute("data-session", record.session_id);
            row.setAttribute("data-start", record.start);
            cell(row, record.start, "time");
            cell(row, record.client ? record.client.ip : "?");
            cell(row, unique(transactions.map((t) => address(t.mail_from ? t.mail_from.address : null))).join(", "));
            cell(row, unique(transactions.flatMap((t) => (t.rcpt_to || []).map((r) => address(r.address)))).join(", "));
            const subjects = transactions.map((t) => t.message ? t.message.subject : null).filter((s) => s !== null && s !== undefined);
            cell(row, subjects.length ? subjects[0] : "");
            cell(row, record.outcome, "outcome o-" + record.outcome);
            const link = document.createElement("a");
            link.setAttribute("href", "/sessions/" + encodeURIComponent(record.session_id));
            link.textContent = "open";
            cell(row, "").appendChild(link);
            row.classList.add("new");
            return row;
          }
          function insert(row) {
            const start = row.dataset.start;
            for (const existing of body.rows) {
              if (existing.dataset.start < start) { body.insertBefore(row, existing); return; }
            }
            body.appendChild(row);
          }
          async function poll() {
            const url = "/api/sessions?" + (query ? query + "&" : "") + "since=" + encodeURIComponent(since) + "&limit=1000";
            try {
              const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } });
              if (!response.ok) { status.textContent = "Live updates stopped: the console answered " + response.status + "."; return; }
              const sessions = (await response.json()).sessions;
              for (const record of sessions.slice().reverse()) {
                if (known.has(record.session_id)) continue;
                known.add(record.session_id);
                insert(sessionRow(record));
              }
              status.textContent = "Live: checked " + new Date().toISOString().slice(11, 19) + " UTC.";
            } catch (error) {
              status.textContent = "Live updates paused: " + error.message;
            }
            setTimeout(poll, 2000);
          }
          setTimeout(poll, 2000);
        })();
        """#
}
