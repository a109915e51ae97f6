"""From the web to text: WARC/WET records, charsets, HTML to text, language identification."""
