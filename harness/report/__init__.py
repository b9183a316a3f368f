"""The report: traces to swimlanes and tables, HTML and Markdown."""
