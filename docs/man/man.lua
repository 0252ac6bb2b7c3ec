-- pandoc Lua filter for the man pages (docs/man/README.md). The page's own sections are written
-- as level-2 headings ("## NAME") and a document of docs/ included in a page keeps its headings
-- ("# queuerctl", "## Verbs", "### migrate"): every heading moves up one level, so "## X" becomes
-- a man section (.SH) and "### x" a subsection (.SS), and the included document's own title
-- (level 1) is dropped. Links to other documents keep only their text.
function Header(h)
  if h.level == 1 then
    return {}
  end
  h.level = h.level - 1
  if h.level == 1 then
    h.content = {pandoc.Str(pandoc.utils.stringify(h.content):upper())}
  end
  return h
end

function Link(l)
  if not l.target:match("^%a[%w+.-]*:") then
    return l.content
  end
end
