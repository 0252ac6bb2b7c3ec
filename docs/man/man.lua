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

-- Tables become definition lists: wide Markdown tables do not fit an 80-column terminal. The
-- first cell of each row is the term; the other cells follow, each prefixed with its column's
-- heading when the table has more than two columns. Empty and "—" cells are left out.
function Table(t)
  local headers = {}
  if t.head and #t.head.rows > 0 then
    for _, c in ipairs(t.head.rows[1].cells) do
      table.insert(headers, pandoc.utils.stringify(c.contents))
    end
  end
  local items = {}
  for _, body in ipairs(t.bodies) do
    for _, row in ipairs(body.body) do
      local cells = row.cells
      local term = pandoc.utils.blocks_to_inlines(cells[1].contents)
      local defs = {}
      for j = 2, #cells do
        local text = pandoc.utils.stringify(cells[j].contents)
        if text ~= "" and text ~= "—" then
          local inl = pandoc.utils.blocks_to_inlines(cells[j].contents)
          if #cells > 2 and headers[j] and headers[j] ~= "" then
            local prefixed = pandoc.List({pandoc.Emph({pandoc.Str(headers[j] .. ":")}), pandoc.Space()})
            prefixed:extend(inl)
            inl = prefixed
          end
          table.insert(defs, pandoc.Para(inl))
        end
      end
      table.insert(items, {term, {defs}})
    end
  end
  return pandoc.DefinitionList(items)
end
