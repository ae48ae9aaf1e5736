//! The strategy pages' sequence diagrams, drawn as SVG on the server.
//!
//! The pages are written for GitHub, which draws ```` ```mermaid ```` blocks itself. `/docs/<strategy>`
//! cannot run Mermaid: the site's CSP allows no inline script, and no JavaScript library is
//! fetched. The pages use a small part of Mermaid's `sequenceDiagram` (participants, solid and
//! dashed messages, notes), so that part is drawn here; a block that uses anything else is
//! shown as its source, as before.
use std::fmt::Write;

/// Mermaid's `->>` (a request) or `-->>` (a reply).
#[derive(Debug, PartialEq)]
enum Step {
    Message { from: usize, to: usize, reply: bool, text: String },
    Note { over: (usize, usize), text: String },
}

#[derive(Debug, PartialEq)]
struct Diagram {
    participants: Vec<(String, String)>,
    steps: Vec<Step>,
}

/// `None` unless every line is one this module draws.
fn parse(source: &str) -> Option<Diagram> {
    let mut lines = source.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("%%"));
    if lines.next()? != "sequenceDiagram" {
        return None;
    }
    let mut diagram = Diagram { participants: Vec::new(), steps: Vec::new() };
    for line in lines {
        if let Some(rest) = line.strip_prefix("participant ") {
            let (id, label) = rest.split_once(" as ").unwrap_or((rest, rest));
            diagram.participants.push((id.trim().to_owned(), label.trim().to_owned()));
        } else if let Some(rest) = line.strip_prefix("Note ") {
            let (place, text) = rest.split_once(':')?;
            let ids = place.strip_prefix("over ")?;
            let mut over = ids.split(',').map(|id| diagram.index(id.trim()));
            let first = over.next()??;
            let last = over.next().unwrap_or(Some(first))?;
            diagram.steps.push(Step::Note { over: (first.min(last), first.max(last)), text: text.trim().to_owned() });
        } else {
            let (arrow, text) = line.split_once(':')?;
            let (reply, (from, to)) = match arrow.split_once("-->>") {
                Some(ends) => (true, ends),
                None => (false, arrow.split_once("->>")?),
            };
            let (from, to) = (diagram.index(from.trim())?, diagram.index(to.trim())?);
            diagram.steps.push(Step::Message { from, to, reply, text: text.trim().to_owned() });
        }
    }
    (!diagram.participants.is_empty()).then_some(diagram)
}

impl Diagram {
    fn index(&self, id: &str) -> Option<usize> {
        self.participants.iter().position(|(p, _)| p == id)
    }

    /// The steps in words, for a screen reader: the messages are the lesson, not the picture.
    fn description(&self) -> String {
        let name = |i: usize| self.participants[i].1.as_str();
        let steps: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .map(|(n, step)| match step {
                Step::Message { from, to, reply, text } => {
                    let verb = if *reply { "answers" } else { "to" };
                    format!("{}. {} {verb} {}: {text}.", n + 1, name(*from), name(*to))
                }
                Step::Note { over: (a, _), text } => format!("{}. At {}: {text}.", n + 1, name(*a)),
            })
            .collect();
        steps.join(" ")
    }
}

const FONT: f64 = 13.0;
/// An average character's width at [`FONT`] in a sans-serif face: the layout needs no font file.
const CHAR: f64 = 7.2;
const MARGIN: f64 = 10.0;
const BOX_HEIGHT: f64 = 34.0;
const ROW: f64 = 38.0;
const SELF_LOOP: f64 = 30.0;

fn width_of(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The diagram as an `<svg>` element, or `None` for a block this module does not draw.
pub fn to_svg(source: &str) -> Option<String> {
    let diagram = parse(source)?;
    let n = diagram.participants.len();
    let label = |i: usize| width_of(&diagram.participants[i].1) + 20.0;
    // The distance between neighbouring lifelines: enough for both boxes, then widened where a
    // message over them needs more, the narrow spans first.
    let mut gaps: Vec<f64> = (1..n).map(|i| (label(i - 1) + label(i)) / 2.0 + 20.0).collect();
    // (Notes size themselves, below.)
    let mut spans: Vec<(usize, usize, f64)> = diagram
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Message { from, to, text, .. } if from == to => {
                Some((*from, *from + 1, width_of(text) + SELF_LOOP + 20.0))
            }
            Step::Message { from, to, text, .. } => Some((*from.min(to), *from.max(to), width_of(text) + 20.0)),
            Step::Note { .. } => None,
        })
        .collect();
    spans.sort_by_key(|(a, b, _)| b - a);
    for (a, b, need) in spans {
        let b = b.min(n - 1);
        if a >= b {
            continue;
        }
        let have: f64 = gaps[a..b].iter().sum();
        if have < need {
            let more = (need - have) / (b - a) as f64;
            gaps[a..b].iter_mut().for_each(|gap| *gap += more);
        }
    }
    // Lifelines from 0, then shifted right so that whatever reaches furthest left (a box, or a
    // note wider than what it is over) starts at the margin.
    let offsets: Vec<f64> = std::iter::once(0.0)
        .chain(gaps.iter().scan(0.0, |x, gap| {
            *x += gap;
            Some(*x)
        }))
        .collect();
    let note_half = |a: usize, b: usize, text: &str| {
        (width_of(text) + 20.0).max(offsets[b] - offsets[a] + label(a).max(label(b))) / 2.0
    };
    let mut extents: Vec<(f64, f64)> =
        (0..n).map(|i| (offsets[i] - label(i) / 2.0, offsets[i] + label(i) / 2.0)).collect();
    for step in &diagram.steps {
        match step {
            Step::Message { from, to, text, .. } if from == to => {
                extents.push((offsets[*from], offsets[*from] + SELF_LOOP + 10.0 + width_of(text)));
            }
            Step::Note { over: (a, b), text } => {
                let (middle, half) = ((offsets[*a] + offsets[*b]) / 2.0, note_half(*a, *b, text));
                extents.push((middle - half, middle + half));
            }
            Step::Message { .. } => {}
        }
    }
    let left = extents.iter().map(|e| e.0).fold(f64::INFINITY, f64::min);
    let right = extents.iter().map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
    let x = |i: usize| offsets[i] - left + MARGIN;
    let width = right - left + 2.0 * MARGIN;
    let top = MARGIN + BOX_HEIGHT;
    let height = top + diagram.steps.len() as f64 * ROW + 20.0;

    let names: Vec<&str> = diagram.participants.iter().map(|(_, label)| label.as_str()).collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="diagram" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img" font-family="sans-serif" font-size="{FONT}"><title>Sequence diagram between {}</title><desc>{}</desc>"#,
        escape(&names.join(", ")),
        escape(&diagram.description()),
    );
    for (i, (_, label)) in diagram.participants.iter().enumerate() {
        let (cx, w) = (x(i), width_of(label) + 20.0);
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{MARGIN}" width="{w:.1}" height="{BOX_HEIGHT}" rx="4" fill="none" stroke="currentColor"/><text x="{cx:.1}" y="{:.1}" text-anchor="middle" fill="currentColor">{}</text><line x1="{cx:.1}" y1="{top}" x2="{cx:.1}" y2="{:.1}" stroke="currentColor" stroke-opacity="0.4" stroke-dasharray="4 4"/>"#,
            cx - w / 2.0,
            MARGIN + BOX_HEIGHT / 2.0 + FONT / 3.0,
            escape(label),
            height - 10.0,
        );
    }
    for (row, step) in diagram.steps.iter().enumerate() {
        let y = top + (row as f64 + 1.0) * ROW - 8.0;
        match step {
            Step::Message { from, to, reply, text } => {
                let dash = if *reply { r#" stroke-dasharray="6 4""# } else { "" };
                let (x1, x2) = (x(*from), x(*to));
                if from == to {
                    let _ = write!(
                        svg,
                        r#"<path d="M{x1:.1},{:.1} h{SELF_LOOP} v12 h-{SELF_LOOP}" fill="none" stroke="currentColor"{dash}/>{}<text x="{:.1}" y="{:.1}" fill="currentColor">{}</text>"#,
                        y - 12.0,
                        arrowhead(x1, y, -1.0),
                        x1 + SELF_LOOP + 6.0,
                        y - 2.0,
                        escape(text),
                    );
                } else {
                    let direction = if x2 > x1 { 1.0 } else { -1.0 };
                    let _ = write!(
                        svg,
                        r#"<line x1="{x1:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="currentColor"{dash}/>{}<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="currentColor">{}</text>"#,
                        x2 - direction * 8.0,
                        arrowhead(x2, y, direction),
                        (x1 + x2) / 2.0,
                        y - 6.0,
                        escape(text),
                    );
                }
            }
            Step::Note { over: (a, b), text } => {
                let (middle, half) = ((x(*a) + x(*b)) / 2.0, note_half(*a, *b, text));
                let (left, right) = (middle - half, middle + half);
                let _ = write!(
                    svg,
                    r#"<rect x="{left:.1}" y="{:.1}" width="{:.1}" height="26" fill="currentColor" fill-opacity="0.08" stroke="currentColor" stroke-opacity="0.5"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="currentColor">{}</text>"#,
                    y - 20.0,
                    right - left,
                    (left + right) / 2.0,
                    y - 2.0,
                    escape(text),
                );
            }
        }
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// A filled triangle whose tip is at (`x`, `y`), pointing right (`direction` 1) or left (-1).
fn arrowhead(x: f64, y: f64, direction: f64) -> String {
    let back = x - direction * 9.0;
    format!(
        r#"<polygon points="{x:.1},{y:.1} {back:.1},{:.1} {back:.1},{:.1}" fill="currentColor"/>"#,
        y - 4.5,
        y + 4.5
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_part_of_mermaid_the_pages_use() {
        let diagram = parse(
            "sequenceDiagram\n    participant B as Browser\n    participant A as app1 (memory)\n    \
             B->>A: GET /cart: please\n    A->>A: look up\n    A-->>B: 200\n    Note over A: kill -9: gone\n",
        )
        .unwrap();
        assert_eq!(diagram.participants[1], ("A".to_owned(), "app1 (memory)".to_owned()));
        assert_eq!(diagram.steps[0], Step::Message { from: 0, to: 1, reply: false, text: "GET /cart: please".into() });
        assert_eq!(diagram.steps[1], Step::Message { from: 1, to: 1, reply: false, text: "look up".into() });
        assert_eq!(diagram.steps[2], Step::Message { from: 1, to: 0, reply: true, text: "200".into() });
        assert_eq!(diagram.steps[3], Step::Note { over: (1, 1), text: "kill -9: gone".into() });
    }

    #[test]
    fn anything_else_is_left_as_source() {
        assert_eq!(parse("graph TD\n A-->B"), None);
        assert_eq!(parse("sequenceDiagram\n participant A\n loop every second\n A->>A: x\n end"), None);
        assert_eq!(parse("sequenceDiagram\n participant A\n A->>Z: unknown participant"), None);
    }

    #[test]
    fn text_is_escaped_and_every_message_is_drawn() {
        let svg = to_svg("sequenceDiagram\nparticipant A as <b>\nparticipant B\nA->>B: x < y & z\nB-->>A: ok").unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("&lt;b&gt;") && svg.contains("x &lt; y &amp; z") && !svg.contains("<b>"));
        assert_eq!(svg.matches("<polygon").count(), 2);
        assert_eq!(svg.matches("stroke-dasharray=\"6 4\"").count(), 1, "one reply");
        assert!(svg.contains("<desc>1. &lt;b&gt; to B: x &lt; y &amp; z. 2. B answers &lt;b&gt;: ok.</desc>"), "{svg}");
    }

    #[test]
    fn every_diagram_of_the_strategy_pages_is_drawn() {
        for backend in crate::session::Backend::ALL {
            let markdown = super::super::docs::source(backend.as_str()).unwrap();
            for block in markdown.split("```mermaid\n").skip(1) {
                let source = block.split("```").next().unwrap();
                assert!(to_svg(source).is_some(), "{backend}: a diagram this module cannot draw:\n{source}");
            }
        }
    }
}
