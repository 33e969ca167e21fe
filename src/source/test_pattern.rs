//! The built-in test pattern: a moving picture with a frame counter and clock, encoded to JPEG.
//!
//! Each frame is visibly different (a sweeping bar, a bouncing square, the counter), so a viewer
//! can tell at a glance that frames are flowing and whether any were skipped.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use jpeg_encoder::{ColorType, Encoder};
use tokio::time::MissedTickBehavior;

use crate::publish::{Publisher, publish_jpeg};
use crate::shutdown::Shutdown;

/// Picture size: 640x480 is the typical IP-camera substream.
const WIDTH: usize = 640;
const HEIGHT: usize = 480;
/// JPEG quality: gives frames of a few tens of KB, like a real camera's.
const QUALITY: u8 = 80;
/// Pixel size of one dot of the 5x7 digit font.
const DOT: usize = 8;

/// The test pattern's settings.
#[derive(Debug, Clone)]
pub struct TestPattern {
    /// Frames per second.
    pub fps: u32,
}

impl TestPattern {
    /// Publishes a new test-pattern frame `fps` times a second until shutdown.
    pub async fn run(self, publisher: Publisher, shutdown: Shutdown) {
        let stream = publisher.stream();
        let fps = self.fps;
        let mut ticks = tokio::time::interval(Duration::from_secs(1) / fps);
        // A late tick is skipped rather than bunched: the pattern is live, not a backlog.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut number: u64 = 0;
        tracing::info!(stream = %stream.name(), fps, "test pattern started");
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                _ = ticks.tick() => {}
            }
            number += 1;
            let rendered = tokio::task::spawn_blocking(move || render(number)).await;
            match rendered {
                Ok(jpeg) => {
                    if let Err(err) = publish_jpeg(&publisher, Bytes::from(jpeg)).await {
                        tracing::error!(%err, "test pattern made an invalid JPEG");
                    }
                }
                Err(err) => tracing::error!(%err, "test pattern renderer failed"),
            }
        }
    }
}

/// Draws frame `number` and encodes it as a baseline JPEG.
pub fn render(number: u64) -> Vec<u8> {
    let mut rgb = vec![0u8; WIDTH * HEIGHT * 3];
    let phase = number as usize;
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let at = (y * WIDTH + x) * 3;
            // A diagonal colour wash that drifts one step per frame.
            rgb[at] = ((x + phase * 4) % 256) as u8;
            rgb[at + 1] = ((y + phase * 2) % 256) as u8;
            rgb[at + 2] = (((x + y) / 4 + phase) % 256) as u8;
        }
    }
    // A white bar sweeping left to right, one pass every 2 s at 30 fps.
    let bar_x = (phase * WIDTH / 60) % WIDTH;
    fill(&mut rgb, bar_x, 0, 16, HEIGHT, [255, 255, 255]);
    // A black square bouncing vertically.
    let span = HEIGHT - 64;
    let bounce = phase * 8 % (2 * span);
    let square_y = if bounce < span {
        bounce
    } else {
        2 * span - bounce
    };
    fill(&mut rgb, WIDTH - 96, square_y, 64, 64, [0, 0, 0]);

    let clock = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = clock.as_secs() % 86_400;
    let time = format!(
        "{:02}:{:02}:{:02}.{:03}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        clock.subsec_millis()
    );
    draw_text(&mut rgb, 24, 24, &format!("{number:06}"));
    draw_text(&mut rgb, 24, HEIGHT - 24 - 7 * DOT / 2, &time);

    let mut jpeg = Vec::with_capacity(64 * 1024);
    Encoder::new(&mut jpeg, QUALITY)
        .encode(&rgb, WIDTH as u16, HEIGHT as u16, ColorType::Rgb)
        .expect("encoding into a Vec cannot fail");
    jpeg
}

fn fill(rgb: &mut [u8], x: usize, y: usize, w: usize, h: usize, colour: [u8; 3]) {
    for row in y..(y + h).min(HEIGHT) {
        for col in x..(x + w).min(WIDTH) {
            let at = (row * WIDTH + col) * 3;
            rgb[at..at + 3].copy_from_slice(&colour);
        }
    }
}

/// Writes `text` (digits, `:` and `.`) on a black box, half-size when it is not the counter.
fn draw_text(rgb: &mut [u8], x: usize, y: usize, text: &str) {
    let dot = if text.contains(':') { DOT / 2 } else { DOT };
    let advance = 6 * dot;
    fill(
        rgb,
        x - dot,
        y - dot,
        advance * text.len() + dot,
        9 * dot,
        [0, 0, 0],
    );
    for (i, ch) in text.chars().enumerate() {
        let rows = glyph(ch);
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..5 {
                if bits & (0b10000 >> col) != 0 {
                    let px = x + i * advance + col * dot;
                    fill(rgb, px, y + row * dot, dot, dot, [255, 255, 255]);
                }
            }
        }
    }
}

/// A 5x7 bitmap of `ch`; each row's low five bits are its pixels, left to right.
fn glyph(ch: char) -> [u8; 7] {
    match ch {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        _ => [0; 7],
    }
}
