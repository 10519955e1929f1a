// SPDX-License-Identifier: MIT
// An SVG picture of one tensor's comparison, readable in a browser: the before and after
// histograms overlaid on the same bins, and the relative difference against the original value.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "diff.hpp"

namespace fq::stats {

namespace detail {

inline std::string fmt_num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

}  // namespace detail

/// `s` as XML text or attribute value: <, >, & and " as entities.
inline std::string xml_escape(std::string_view s) {
  std::string r;
  for (char c : s) {
    switch (c) {
      case '<':
        r += "&lt;";
        break;
      case '>':
        r += "&gt;";
        break;
      case '&':
        r += "&amp;";
        break;
      case '"':
        r += "&quot;";
        break;
      default:
        r += c;
    }
  }
  return r;
}

/// The SVG document for `t`: left, the histograms of A (blue) and B (orange) over the common
/// edges, on a square-root count scale so sparse tails stay visible; right, log10 of the relative
/// difference against the value of A for the sampled elements (exact matches on the floor line).
inline std::string to_svg(const tensor_diff& t) {
  using detail::fmt_num;
  constexpr double W = 1000, H = 420, pw = 440, ph = 300, top = 70, left1 = 50, left2 = 540;
  std::string s;
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" height=\"420\" "
       "font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<rect width=\"" + fmt_num(W) + "\" height=\"" + fmt_num(H) + "\" fill=\"white\"/>\n";
  const auto& p = t.paired;
  char cosine[32];
  std::snprintf(cosine, sizeof cosine, "%.9f", p.cosine);
  s += "<text x=\"20\" y=\"24\" font-size=\"16\">" + xml_escape(t.name) + " (" + t.type_a + " → " +
       t.type_b + ")</text>\n";
  s += "<text x=\"20\" y=\"44\">changed " + std::to_string(p.changed) + " of " +
       std::to_string(p.count) + ", max |a-b| " + fmt_num(p.max_abs_diff) + ", mean rel " +
       fmt_num(p.mean_rel_diff) + ", max rel " + fmt_num(p.max_rel_diff) + ", SQNR " +
       fmt_num(p.sqnr_db) + " dB, cosine " + cosine + "</text>\n";
  // Axes.
  for (double x0 : {left1, left2})
    s += "<rect x=\"" + fmt_num(x0) + "\" y=\"" + fmt_num(top) + "\" width=\"" + fmt_num(pw) +
         "\" height=\"" + fmt_num(ph) + "\" fill=\"none\" stroke=\"#888\"/>\n";
  // Histograms.
  const auto& e = t.distribution.edges;
  const auto& ha = t.distribution.before.histogram;
  const auto& hb = t.distribution.after.histogram;
  if (e.size() >= 2 && ha.size() + 1 == e.size() && hb.size() + 1 == e.size()) {
    std::uint64_t peak = 1;
    for (auto c : ha) peak = std::max(peak, c);
    for (auto c : hb) peak = std::max(peak, c);
    const double bw = pw / static_cast<double>(ha.size());
    auto bars = [&](const std::vector<std::uint64_t>& h, const char* colour) {
      for (std::size_t k = 0; k < h.size(); ++k) {
        const double hgt = ph * std::sqrt(static_cast<double>(h[k]) / static_cast<double>(peak));
        s += "<rect x=\"" + fmt_num(left1 + bw * static_cast<double>(k)) + "\" y=\"" +
             fmt_num(top + ph - hgt) + "\" width=\"" + fmt_num(bw) + "\" height=\"" + fmt_num(hgt) +
             "\" fill=\"" + colour + "\" fill-opacity=\"0.45\"/>\n";
      }
    };
    bars(ha, "#1f77b4");
    bars(hb, "#ff7f0e");
    s += "<text x=\"" + fmt_num(left1) + "\" y=\"" + fmt_num(top + ph + 16) + "\">" +
         fmt_num(e.front()) + "</text>\n";
    s += "<text x=\"" + fmt_num(left1 + pw) + "\" y=\"" + fmt_num(top + ph + 16) +
         "\" text-anchor=\"end\">" + fmt_num(e.back()) + "</text>\n";
  }
  s += "<text x=\"" + fmt_num(left1) + "\" y=\"" + fmt_num(top - 8) +
       "\">histogram (√count): <tspan fill=\"#1f77b4\">A before</tspan>, "
       "<tspan fill=\"#ff7f0e\">B after</tspan></text>\n";
  // Relative difference against value.
  s += "<text x=\"" + fmt_num(left2) + "\" y=\"" + fmt_num(top - 8) +
       "\">log10 relative difference against value of A</text>\n";
  if (!t.samples.empty()) {
    double lo = INFINITY, hi = -INFINITY, rmax = -12;
    for (const auto& [v, r] : t.samples) {
      lo = std::min<double>(lo, v), hi = std::max<double>(hi, v);
      if (r > 0) rmax = std::max(rmax, std::log10(r));
    }
    if (!(lo < hi)) lo -= 0.5, hi += 0.5;
    const double rtop = std::ceil(rmax), rbot = std::min(rtop - 1, -12.0);
    for (const auto& [v, r] : t.samples) {
      const double lr = r > 0 ? std::max(std::log10(r), rbot) : rbot;
      const double x = left2 + pw * (v - lo) / (hi - lo);
      const double y = top + ph * (rtop - lr) / (rtop - rbot);
      s += "<circle cx=\"" + fmt_num(x) + "\" cy=\"" + fmt_num(y) +
           "\" r=\"1.5\" fill=\"#d62728\" fill-opacity=\"0.5\"/>\n";
    }
    s += "<text x=\"" + fmt_num(left2 - 4) + "\" y=\"" + fmt_num(top + 10) +
         "\" text-anchor=\"end\">" + fmt_num(rtop) + "</text>\n";
    s += "<text x=\"" + fmt_num(left2 - 4) + "\" y=\"" + fmt_num(top + ph) +
         "\" text-anchor=\"end\">" + fmt_num(rbot) + "</text>\n";
    s += "<text x=\"" + fmt_num(left2) + "\" y=\"" + fmt_num(top + ph + 16) + "\">" + fmt_num(lo) +
         "</text>\n";
    s += "<text x=\"" + fmt_num(left2 + pw) + "\" y=\"" + fmt_num(top + ph + 16) +
         "\" text-anchor=\"end\">" + fmt_num(hi) + "</text>\n";
  }
  s += "</svg>\n";
  return s;
}

}  // namespace fq::stats
