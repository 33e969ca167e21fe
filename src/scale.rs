//! Scaling a JPEG down to a narrower one, for thumbnails (`?width=`).
//!
//! Decode (zune-jpeg), resize (fast_image_resize, bilinear convolution, SIMD where the CPU has
//! it), encode (jpeg-encoder). All three are pure Rust and maintained; libjpeg-turbo's
//! DCT-domain scaling would decode faster, but its Rust binding needs a newer libturbojpeg than
//! Debian 12 ships, and a system library would cost the two-command start.
//!
//! This is the one place framecast decodes pixels, so it refuses what it will not pay for: a
//! frame of more than [`MAX_PIXELS`] is not scaled. The caller runs it off the async threads.

use bytes::Bytes;
use fast_image_resize as resize;
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Largest frame scaled: 8K UHD. Its decoded pixels take about 100 MB.
pub const MAX_PIXELS: u64 = 7680 * 4320;
/// Quality of the scaled JPEGs: thumbnails, where 80 looks clean and stays small.
const QUALITY: u8 = 80;

/// A scaled JPEG and its size.
#[derive(Debug)]
pub struct Scaled {
    /// The new JPEG.
    pub jpeg: Bytes,
    /// Its width, as asked.
    pub width: u16,
    /// Its height, keeping the aspect ratio.
    pub height: u16,
}

/// Why a frame could not be scaled.
#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    /// More pixels than [`MAX_PIXELS`].
    #[error("{0}x{1} is too large to scale")]
    TooLarge(u16, u16),
    /// The decoder refused the JPEG.
    #[error("cannot decode the frame: {0}")]
    Decode(String),
    /// Resizing or encoding failed.
    #[error("cannot scale the frame: {0}")]
    Encode(String),
}

/// The height that keeps `source_width` × `source_height`'s aspect ratio at `width`.
pub fn height_for(width: u16, source_width: u16, source_height: u16) -> u16 {
    let height = (u32::from(source_height) * u32::from(width) + u32::from(source_width) / 2)
        / u32::from(source_width.max(1));
    height.clamp(1, u32::from(u16::MAX)) as u16
}

/// `jpeg`, `source_width` × `source_height`, scaled to `width` pixels wide.
pub fn to_width(
    jpeg: &[u8],
    source_width: u16,
    source_height: u16,
    width: u16,
) -> Result<Scaled, ScaleError> {
    if u64::from(source_width) * u64::from(source_height) > MAX_PIXELS {
        return Err(ScaleError::TooLarge(source_width, source_height));
    }
    let options = DecoderOptions::default()
        .set_max_width(usize::from(source_width))
        .set_max_height(usize::from(source_height))
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(jpeg, options);
    let rgb = decoder
        .decode()
        .map_err(|err| ScaleError::Decode(err.to_string()))?;
    let (decoded_width, decoded_height) = decoder
        .dimensions()
        .ok_or_else(|| ScaleError::Decode("no dimensions".into()))?;
    let source = resize::images::Image::from_vec_u8(
        u32::try_from(decoded_width).unwrap_or(0),
        u32::try_from(decoded_height).unwrap_or(0),
        rgb,
        resize::PixelType::U8x3,
    )
    .map_err(|err| ScaleError::Decode(err.to_string()))?;
    let height = height_for(width, source_width, source_height);
    let mut scaled =
        resize::images::Image::new(u32::from(width), u32::from(height), resize::PixelType::U8x3);
    let options = resize::ResizeOptions::new()
        .resize_alg(resize::ResizeAlg::Convolution(resize::FilterType::Bilinear));
    resize::Resizer::new()
        .resize(&source, &mut scaled, &options)
        .map_err(|err| ScaleError::Encode(err.to_string()))?;
    let mut out = Vec::with_capacity(usize::from(width) * usize::from(height) / 4);
    jpeg_encoder::Encoder::new(&mut out, QUALITY)
        .encode(scaled.buffer(), width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|err| ScaleError::Encode(err.to_string()))?;
    Ok(Scaled {
        jpeg: Bytes::from(out),
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::samples;

    #[test]
    fn a_frame_is_scaled_to_the_width_keeping_its_aspect() {
        let (width, height) = (640, 360);
        let jpeg = samples::sample_jpeg(width, height, 3);
        let scaled = to_width(&jpeg, width, height, 160).unwrap();
        assert_eq!((scaled.width, scaled.height), (160, 90));
        let info = crate::jpeg::inspect(&scaled.jpeg).expect("a valid JPEG");
        assert_eq!((info.width, info.height), (160, 90));
        assert!(scaled.jpeg.len() < jpeg.len());
    }

    #[test]
    fn what_it_will_not_decode_is_refused_not_attempted() {
        assert!(matches!(
            to_width(b"\xFF\xD8\xFF\xD9", 8000, 8000, 160),
            Err(ScaleError::TooLarge(8000, 8000))
        ));
        assert!(matches!(
            to_width(b"\xFF\xD8\xFF\xD9", 64, 64, 32),
            Err(ScaleError::Decode(_))
        ));
        assert_eq!(height_for(320, 1280, 720), 180);
        assert_eq!(height_for(160, 4000, 1), 1);
    }
}
