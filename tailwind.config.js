/** Tailwind scans the templ sources and our one script for class names. */
module.exports = {
  content: ["./views/**/*.templ", "./static/app.js"],
  theme: {
    extend: {
      fontFamily: {
        sans: ["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
      },
    },
  },
  plugins: [],
};
