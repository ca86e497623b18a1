//! The console's overview at `/admin`: "are we safe?" at a glance. Sign-ins per day for 30
//! days as a server-rendered SVG chart (no script; the numbers in a table for screen
//! readers), MFA registration coverage, risky users and sign-ins to review, the policies that
//! blocked most in 7 days, and failed sign-ins by app. Every number is aggregated in SQL
//! (`store::overview`); a list cut to its first rows says how many there are in all.

use super::words::{self, Moment};
use super::{Admin, Apps, Nav};
use crate::AppState;
use crate::i18n::filters;
use crate::store::{self, overview as ov};
use crate::web::{PageError, html};
use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

/// Days in the chart.
const DAYS: i64 = 30;
/// Rows in each "to review" list.
const SHOWN: i64 = 10;

/// Chart geometry (SVG user units).
const BAR_W: i64 = 16;
const STEP: i64 = 20;
const LEFT: i64 = 40;
const TOP: i64 = 10;
const HEIGHT: i64 = 150;

pub struct Segment {
    pub class: &'static str,
    pub y: i64,
    pub h: i64,
}

pub struct Bar {
    pub x: i64,
    /// "MM-DD" under every fifth bar, else empty.
    pub tick: String,
    pub date: String,
    pub day: ov::Day,
    pub segments: Vec<Segment>,
}

/// The chart: one stacked bar a day, scaled to the busiest day.
pub struct Chart {
    pub bars: Vec<Bar>,
    /// The busiest day's total (the top of the axis).
    pub max: i64,
    pub width: i64,
    pub bar_width: i64,
    pub totals: ov::Day,
}

impl Chart {
    /// The `DAYS` days ending with `today`, from `days` (a day missing from it had no sign-ins).
    fn build(days: &[ov::Day], today: i64) -> Chart {
        let first = today - DAYS + 1;
        let max = days.iter().map(total).max().unwrap_or(0).max(1);
        let mut totals = ov::Day::default();
        let bars = (first..=today)
            .enumerate()
            .map(|(i, d)| {
                let day = days.iter().find(|x| x.day == d).cloned().unwrap_or(ov::Day { day: d, ..Default::default() });
                totals.success += day.success;
                totals.mfa += day.mfa;
                totals.blocked += day.blocked;
                totals.failed += day.failed;
                let mut bottom = TOP + HEIGHT;
                let mut segments = vec![];
                for (class, n) in [("ok", day.success), ("mfa", day.mfa), ("blocked", day.blocked), ("failed", day.failed)] {
                    // Rounded so that a day with any of them shows at least a sliver.
                    let h = if n == 0 { 0 } else { ((n * HEIGHT + max / 2) / max).max(1) };
                    bottom -= h;
                    if h > 0 {
                        segments.push(Segment { class, y: bottom, h });
                    }
                }
                let date = civil(d);
                let tick = if (today - d) % 5 == 0 { date[5..].to_string() } else { String::new() };
                Bar { x: LEFT + i as i64 * STEP, tick, date, day, segments }
            })
            .collect();
        Chart { bars, max, width: LEFT + DAYS * STEP, bar_width: BAR_W, totals }
    }

    pub fn axis_y(&self) -> i64 {
        TOP + HEIGHT
    }

    pub fn label_y(&self) -> i64 {
        TOP + HEIGHT + 16
    }

    pub fn height(&self) -> i64 {
        TOP + HEIGHT + 24
    }
}

fn total(d: &ov::Day) -> i64 {
    d.success + d.mfa + d.blocked + d.failed
}

/// Days since 1970-01-01 → "YYYY-MM-DD".
fn civil(day: i64) -> String {
    crate::portal::security::date(Some(day * 86_400))
}

pub struct GraceUser {
    pub id: String,
    pub username: String,
    /// None: the grace has not started (no sign-in yet).
    pub days_left: Option<i64>,
}

pub struct RiskyUser {
    pub id: String,
    pub username: String,
    pub risk: String,
}

pub struct RiskySignIn {
    pub id: i64,
    pub at: Moment,
    pub user: String,
    pub app: String,
    pub risk: String,
    pub result: String,
}

pub struct Count {
    pub label: String,
    pub href: String,
    pub n: i64,
}

/// What only global administrators see (users' registration and risk).
pub struct People {
    pub coverage: ov::Coverage,
    pub percent: i64,
    pub defaults_on: bool,
    pub in_grace: Vec<GraceUser>,
    pub risky_users: Vec<RiskyUser>,
    pub risky_users_total: i64,
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct Overview {
    nav: Nav,
    apps: i64,
    users: i64,
    groups: i64,
    failures_24h: i64,
    chart: Chart,
    people: Option<People>,
    risky_signins: Vec<RiskySignIn>,
    risky_signins_total: i64,
    blocking: Vec<Count>,
    failing_apps: Vec<Count>,
}

fn overview(admin: Admin<Apps>, _req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let offset = admin.zone.offset_at(now);
    let today = (now + offset).div_euclid(86_400);
    let week = now - 7 * 86_400;
    let days = ov::per_day(&conn, today - DAYS + 1, today, offset)?;
    let (apps, users, groups) = ov::counts(&conn)?;
    let failures_24h = ov::failures_since(&conn, now - 86_400)?;
    let people = if admin.nav().global {
        let defaults_on = store::policies::security_defaults(&conn)?;
        let grace = crate::gate::REGISTRATION_GRACE_SECS;
        let coverage = ov::coverage(&conn, defaults_on, grace, now)?;
        let in_grace = ov::in_grace(&conn, defaults_on, grace, now, SHOWN)?
            .into_iter()
            .map(|(id, username, ends)| GraceUser { id, username, days_left: ends.map(|e| ((e - now) + 86_399) / 86_400) })
            .collect();
        let (risky, risky_users_total) = ov::risky_users(&conn, SHOWN)?;
        let risky_users = risky.into_iter().map(|(id, username, risk)| RiskyUser { id, username, risk: words::risk(&risk) }).collect();
        let percent = if coverage.users == 0 { 0 } else { coverage.with_method * 100 / coverage.users };
        Some(People { coverage, percent, defaults_on, in_grace, risky_users, risky_users_total })
    } else {
        None
    };
    let (risky, risky_signins_total) = ov::risky_signins(&conn, week, SHOWN)?;
    let risky_signins = risky
        .into_iter()
        .map(|r| RiskySignIn {
            id: r.id,
            at: admin.zone.at(r.at),
            user: r.username.unwrap_or_default(),
            app: r.app.unwrap_or_else(|| "latchkey".into()),
            risk: words::risk(&r.risk),
            result: words::result(&r.result),
        })
        .collect();
    let blocking =
        ov::top_blocking_policies(&conn, week, 5)?.into_iter().map(|(id, name, n)| Count { href: format!("/admin/policies/{id}"), label: name, n }).collect();
    let from = admin.zone.day(week);
    let failing_apps = ov::failures_by_app(&conn, week, SHOWN)?
        .into_iter()
        .map(|(client_id, name, n)| {
            let mut href = url::form_urlencoded::Serializer::new(String::new());
            href.append_pair("result", "failure").append_pair("from", &from);
            if let Some(c) = &client_id {
                href.append_pair("app", c);
            }
            let label = name.or(client_id).unwrap_or_else(|| "latchkey".into());
            Count { label, href: format!("/admin/signins?{}", href.finish()), n }
        })
        .collect();
    let page = Overview {
        nav: admin.nav(),
        apps,
        users,
        groups,
        failures_24h,
        chart: Chart::build(&days, today),
        people,
        risky_signins,
        risky_signins_total,
        blocking,
        failing_apps,
    };
    Ok(html(StatusCode::OK, &page))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(crate::admin::page(overview)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_a_bar_a_day_scaled_to_the_busiest() {
        let days = [ov::Day { day: 100, success: 2, mfa: 2, blocked: 0, failed: 0 }, ov::Day { day: 90, success: 0, mfa: 0, blocked: 1, failed: 1 }];
        let chart = Chart::build(&days, 100);
        assert_eq!(chart.bars.len(), 30);
        assert_eq!(chart.max, 4);
        let last = chart.bars.last().unwrap();
        assert_eq!(last.segments.iter().map(|s| s.h).sum::<i64>(), HEIGHT);
        assert_eq!(last.segments[0].y + last.segments[0].h, TOP + HEIGHT);
        assert_eq!(chart.bars[19].segments.len(), 2);
        assert!(chart.bars[0].segments.is_empty());
        assert_eq!((chart.totals.success, chart.totals.mfa, chart.totals.blocked, chart.totals.failed), (2, 2, 1, 1));
        assert_eq!(last.date, civil(100));
    }
}
