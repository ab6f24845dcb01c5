/** Tailwind scans the templ sources, the Go view helpers that build class strings, and our one script. */
module.exports = {
  content: ["./views/**/*.templ", "./views/**/*.go", "./static/app.js"],
  theme: {
    extend: {
      fontFamily: {
        sans: ["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
      },
    },
  },
  plugins: [],
};
