/// The console's one stylesheet, served as `/assets/console.css`; the HTML report embeds it.
/// The ladder's colours are here: replies by class (RFC 5321 §4.2.1), marks by kind.
public enum ConsoleStyle {
    public static let source = """
        body { font-family: system-ui, sans-serif; margin: 0; color: #1d2329; background: #f6f7f9; }
        header { display: flex; align-items: center; gap: 1.5em; padding: .5em 1.2em; background: #22303c; color: #fff; }
        header a { color: #d8e6f3; margin-right: 1em; }
        header nav { display: flex; align-items: center; flex: 1; }
        header form.logout { margin-left: auto; }
        .brand { font-weight: 600; letter-spacing: .03em; }
        main { padding: .8em 1.2em; }
        h1 { font-size: 1.35em; } h2 { font-size: 1.1em; margin: .6em 0 .3em; } h3 { font-size: 1em; margin: .5em 0 .2em; }
        .id, code, .address, .filename, td.time { font-family: ui-monospace, monospace; }
        .problem { color: #a40000; font-weight: 600; }
        .note, .live-status { color: #56606a; font-size: .9em; }
        form.search { display: flex; flex-wrap: wrap; gap: .4em .9em; align-items: end; margin-bottom: .6em; }
        form.search label { display: flex; flex-direction: column; font-size: .85em; }
        table { border-collapse: collapse; background: #fff; }
        th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e2e5e9; font-size: .9em; vertical-align: top; }
        tr.new { background: #fff8d6; }
        .outcome { font-weight: 600; }
        .o-completed, .o-delivered { color: #1b6e2a; }
        .o-rejected, .o-tls_failed, .o-reset { color: #a40000; }
        .o-tempfail, .o-tempfailed, .o-timeout, .o-server_closed, .o-incomplete { color: #9a5b00; }
        .o-quarantined, .o-discarded { color: #6a3d9a; }
        .session { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; }
        .dialogue { flex: 0 1 auto; overflow-x: auto; background: #fff; padding: .4em; border: 1px solid #e2e5e9; }
        .facts { flex: 1 1 22em; min-width: 20em; }
        .facts section { background: #fff; border: 1px solid #e2e5e9; padding: .2em .8em .6em; margin-bottom: .8em; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .15em .8em; margin: .3em 0; }
        dt { color: #56606a; } dd { margin: 0; overflow-wrap: anywhere; }
        ul.recipients li.refused { color: #a40000; } ul.recipients li.accepted { color: #1b6e2a; }
        .legend span { display: inline-block; padding: 0 .4em; margin-right: .3em; border-radius: 3px; font-size: .85em; }
        .legend .command { color: #22303c; border: 1px solid #22303c; }
        .legend .r2xx { background: #1b6e2a; color: #fff; } .legend .r3xx { background: #1f5fa8; color: #fff; }
        .legend .r4xx { background: #b36b00; color: #fff; } .legend .r5xx { background: #b00020; color: #fff; }
        .legend .mark-tls { background: #d9ecff; } .legend .mark-rule { background: #ecdcff; }
        .legend .mark-anomaly { background: #ffe1c4; } .legend .gap { border: 1px dashed #888; }
        svg.ladder { font-family: ui-monospace, monospace; font-size: 12px; }
        svg.ladder .col-title { font-family: system-ui, sans-serif; font-weight: 600; font-size: 14px; fill: #22303c; }
        svg.ladder .col-address { fill: #56606a; font-size: 11px; }
        svg.ladder .lifeline { stroke: #9aa4ae; stroke-width: 1; stroke-dasharray: 3 3; }
        svg.ladder .t { fill: #8a939c; font-size: 10px; }
        svg.ladder .arrow line { stroke-width: 1.4; }
        svg.ladder .command line, svg.ladder .content line { stroke: #22303c; }
        svg.ladder .command polygon, svg.ladder .content polygon { fill: #22303c; }
        svg.ladder .command .label, svg.ladder .content .label { fill: #22303c; }
        svg.ladder .content line { stroke-dasharray: 6 3; }
        svg.ladder .note line { stroke: #9aa4ae; } svg.ladder .note polygon, svg.ladder .note .label { fill: #8a939c; }
        svg.ladder .r2xx line { stroke: #1b6e2a; } svg.ladder .r2xx polygon, svg.ladder .r2xx .label { fill: #1b6e2a; }
        svg.ladder .r3xx line { stroke: #1f5fa8; } svg.ladder .r3xx polygon, svg.ladder .r3xx .label { fill: #1f5fa8; }
        svg.ladder .r4xx line { stroke: #b36b00; } svg.ladder .r4xx polygon, svg.ladder .r4xx .label { fill: #b36b00; }
        svg.ladder .r5xx line { stroke: #b00020; } svg.ladder .r5xx polygon, svg.ladder .r5xx .label { fill: #b00020; }
        svg.ladder .rother line { stroke: #56606a; } svg.ladder .rother polygon, svg.ladder .rother .label { fill: #56606a; }
        svg.ladder .mark rect { stroke: none; }
        svg.ladder .mark-tls rect { fill: #d9ecff; } svg.ladder .mark-rule rect { fill: #ecdcff; }
        svg.ladder .mark-anomaly rect { fill: #ffe1c4; }
        svg.ladder .mark text { fill: #22303c; }
        svg.ladder .gap text { fill: #56606a; font-style: italic; }
        .charts { display: flex; flex-wrap: wrap; gap: 1em; }
        .chart-box { background: #fff; border: 1px solid #e2e5e9; padding: .2em .8em .6em; margin-bottom: 1em; }
        svg.chart { font-size: 12px; }
        svg.chart .bar rect { fill: #56606a; }
        svg.chart .o-completed rect, svg.chart .o-delivered rect { fill: #1b6e2a; }
        svg.chart .o-rejected rect, svg.chart .o-tls_failed rect, svg.chart .o-reset rect, svg.chart .r5xx rect { fill: #b00020; }
        svg.chart .o-tempfail rect, svg.chart .o-tempfailed rect, svg.chart .o-timeout rect, svg.chart .o-server_closed rect,
        svg.chart .o-incomplete rect, svg.chart .r4xx rect { fill: #b36b00; }
        svg.chart .o-quarantined rect, svg.chart .o-discarded rect, svg.chart .rule rect { fill: #6a3d9a; }
        svg.chart .bar-label, svg.chart .bar-value { fill: #22303c; }
        svg.chart .axis { stroke: #9aa4ae; }
        """
}
